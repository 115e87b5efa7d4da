"""The Results pages: sent mailings with their figures, one mailing's cards, table and chart."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import insert, select

from app.auth.models import Role
from app.db import utcnow
from app.extensions import db
from app.mailings.models import (
    BounceEvent,
    BounceKind,
    Delivery,
    DeliveryStatus,
    Mailing,
    MailingLink,
    MailingStatus,
)
from app.supporters.models import ListMembership, MailingList
from app.tracking import overview, services
from app.tracking.models import EventKind
from tests.factories import make_supporters

LINKS = ("https://act.example.org/petition", "https://act.example.org/donate")


@dataclass
class Sent:
    """A mailing built for a test, with what was recorded for it, to work out the figures."""

    mailing_id: int
    delivery_ids: list[int]
    statuses: dict[int, DeliveryStatus]
    events: list[dict] = field(default_factory=list)
    bounces: list[tuple[int, BounceKind]] = field(default_factory=list)

    def record(self, kind: EventKind, delivery_id: int, at: datetime, *, machine=False, link=None):
        row = {
            "kind": kind,
            "mailing_id": self.mailing_id,
            "delivery_id": delivery_id,
            "link_position": link,
            "occurred_at": at,
            "machine": machine,
            "user_agent_class": "bot" if machine else "browser",
        }
        services.insert_events([row])
        self.events.append(row)

    def bounce(self, delivery_id: int, kind: BounceKind = BounceKind.HARD) -> None:
        db.session.add(
            BounceEvent(
                kind=kind, source="smtp", mailing_id=self.mailing_id, delivery_id=delivery_id
            )
        )
        self.bounces.append((delivery_id, kind))

    # What the page should say, worked out from the rows themselves.
    def recipients(self, kind: EventKind, *, human: bool | None = None, link=None) -> int:
        return len(
            {
                e["delivery_id"]
                for e in self.events
                if e["kind"] == kind
                and (human is None or e["machine"] is not human)
                and (link is None or e["link_position"] == link)
            }
        )

    def count(self, status: DeliveryStatus) -> int:
        return sum(1 for s in self.statuses.values() if s == status)

    @property
    def delivered(self) -> int:
        return self.count(DeliveryStatus.SENT)

    @property
    def bounced(self) -> int:
        return len({d for d, kind in self.bounces if kind != BounceKind.COMPLAINT})


def sent_mailing(
    name: str = "Free the journalists",
    *,
    recipients: int = 10,
    failed: int = 0,
    queued: int = 0,
    status: MailingStatus = MailingStatus.SENT,
    started_ago: timedelta = timedelta(hours=6),
    scheduled_at: datetime | None = None,
) -> Sent:
    """A mailing with links (a honeypot at 0) and one delivery per new supporter."""
    started = utcnow() - started_ago if status != MailingStatus.SCHEDULED else None
    mailing = Mailing(
        name=name,
        subject=name,
        status=status,
        started_at=started,
        finished_at=started + timedelta(minutes=30) if status == MailingStatus.SENT else None,
        scheduled_at=scheduled_at,
        total_recipients=recipients,
        links=[MailingLink(position=0, url="https://act.example.org/trap", is_honeypot=True)]
        + [MailingLink(position=n, url=url) for n, url in enumerate(LINKS, start=1)],
    )
    db.session.add(mailing)
    db.session.flush()
    prefix = re.sub(r"\W", "", name.lower())[:20] + str(mailing.id) + "-"
    supporter_ids = make_supporters(recipients, prefix=prefix) if recipients else []
    statuses = {}
    for n, supporter_id in enumerate(supporter_ids):
        if n < failed:
            statuses[supporter_id] = DeliveryStatus.FAILED
        elif n < failed + queued:
            statuses[supporter_id] = DeliveryStatus.QUEUED
        else:
            statuses[supporter_id] = DeliveryStatus.SENT
    if supporter_ids:
        db.session.execute(
            insert(Delivery),
            [
                {
                    "mailing_id": mailing.id,
                    "supporter_id": s,
                    "batch_no": 0,
                    "status": statuses[s],
                    "sent_at": started if statuses[s] == DeliveryStatus.SENT else None,
                }
                for s in supporter_ids
            ],
        )
    rows = db.session.execute(
        select(Delivery.id, Delivery.status)
        .where(Delivery.mailing_id == mailing.id)
        .order_by(Delivery.id)
    ).all()
    return Sent(mailing.id, [r.id for r in rows], {r.id: r.status for r in rows})


def busy_mailing() -> tuple[Sent, datetime]:
    """A sent mailing with opens, clicks and actions by people and machines over three hours."""
    sent = sent_mailing(recipients=12, failed=2)
    delivered = [d for d in sent.delivery_ids if sent.statuses[d] == DeliveryStatus.SENT]
    start = utcnow().replace(minute=5, second=0, microsecond=0) - timedelta(hours=5)
    for n, delivery_id in enumerate(delivered[:6]):  # six people open, over two hours
        sent.record(EventKind.OPEN, delivery_id, start + timedelta(minutes=20 * n))
    for delivery_id in delivered[4:9]:  # a proxy fetches five pixels, two of them people's
        sent.record(EventKind.OPEN, delivery_id, start + timedelta(minutes=1), machine=True)
    sent.record(EventKind.CLICK, delivered[0], start + timedelta(hours=1), link=1)
    sent.record(EventKind.CLICK, delivered[0], start + timedelta(hours=1), link=2)
    sent.record(EventKind.CLICK, delivered[1], start + timedelta(hours=2), link=1)
    sent.record(EventKind.CLICK, delivered[7], start + timedelta(minutes=2), machine=True, link=0)
    sent.record(EventKind.CLICK, delivered[7], start + timedelta(minutes=2), machine=True, link=1)
    sent.record(EventKind.ACTION, delivered[0], start + timedelta(hours=2, minutes=10))
    sent.record(EventKind.UNSUBSCRIBE, delivered[2], start + timedelta(hours=2, minutes=30))
    sent.bounce(delivered[9])
    sent.bounce(delivered[9], BounceKind.SOFT)  # one recipient reported twice
    sent.bounce(delivered[8], BounceKind.COMPLAINT)
    db.session.commit()
    return sent, start


def text_of(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def squash(html: str) -> str:
    return re.sub(r"\s+", " ", html)


def row(html: str, attribute: str, tag: str = "tr") -> str:
    """The inside of the first <tag> carrying the attribute (e.g. 'data-figure="opens"')."""
    match = re.search(rf"<{tag}\b[^>]*{attribute}[^>]*>(.*?)</{tag}>", squash(html))
    assert match, f"no <{tag}> with {attribute}"
    return match.group(1)


def cells(html: str, css: str) -> str:
    match = re.search(rf'<td class="num {css}">([^<]*)</td>', html)
    assert match, f"no {css} cell"
    return match.group(1).strip()


def percent(count: int, whole: int) -> str:
    return f"{100 * count / whole:.1f}%"


def test_mailing_page_shows_figures_people_and_machines_apart(staff_client):
    client = staff_client(Role.ANALYST)
    sent, _ = busy_mailing()
    html = text_of(client.get(f"/staff/results/{sent.mailing_id}"))

    delivered = sent.delivered
    assert delivered == 10
    assert cells(row(html, 'data-figure="delivered"'), "all") == str(delivered)
    assert cells(row(html, 'data-figure="failed"'), "all") == str(sent.count(DeliveryStatus.FAILED))
    bounced = row(html, 'data-figure="bounced"')
    assert cells(bounced, "all") == str(sent.bounced) == "1"
    assert cells(bounced, "rate") == percent(sent.bounced, delivered)
    complaints = sum(1 for _, kind in sent.bounces if kind == BounceKind.COMPLAINT)
    assert cells(row(html, 'data-figure="complaints"'), "all") == str(complaints) == "1"
    for key, kind in (
        ("opens", EventKind.OPEN),
        ("clicks", EventKind.CLICK),
        ("actions", EventKind.ACTION),
        ("unsubscribes", EventKind.UNSUBSCRIBE),
    ):
        line = row(html, f'data-figure="{key}"')
        total, human = sent.recipients(kind), sent.recipients(kind, human=True)
        assert cells(line, "all") == str(total), key
        assert cells(line, "human") == str(human), key
        assert cells(line, "machine") == str(total - human), key
        assert cells(line, "rate") == percent(human, delivered), key
        card = row(html, f'data-figure="{key}"', "li")
        assert f'<span class="figure">{human}</span>' in card
    # The proxy's pixels for two people who also opened are not extra recipients.
    assert sent.recipients(EventKind.OPEN) == 9 and sent.recipients(EventKind.OPEN, human=True) == 6


def test_mailing_page_counts_clicks_by_link(staff_client):
    client = staff_client(Role.ANALYST)
    sent, _ = busy_mailing()
    html = text_of(client.get(f"/staff/results/{sent.mailing_id}"))
    for position, url in enumerate(LINKS, start=1):
        line = row(html, f'data-position="{position}"')
        assert url in line
        assert cells(line, "all") == str(sent.recipients(EventKind.CLICK, link=position))
        assert cells(line, "human") == str(
            sent.recipients(EventKind.CLICK, link=position, human=True)
        )
    trap = row(html, 'data-position="0"')
    assert "trap link" in trap and cells(trap, "human") == "0" and cells(trap, "all") == "1"


def first_times(sent: Sent, kind: EventKind, *, human: bool) -> list[datetime]:
    """When each recipient first did it (as a person, when human), from the recorded rows."""
    first: dict[int, datetime] = {}
    for e in sent.events:
        if e["kind"] == kind and not (human and e["machine"]):
            d = e["delivery_id"]
            first[d] = min(first.get(d, e["occurred_at"]), e["occurred_at"])
    return list(first.values())


def bar_of(started: datetime, moment: datetime) -> int:
    """The bar a moment falls in: hours for 72 hours from sending's first hour, then days."""
    start = started.replace(minute=0, second=0, microsecond=0)
    if moment - start < timedelta(hours=72):
        return int((moment - start) // timedelta(hours=1))
    return 72 + (moment - start - timedelta(hours=72)).days


def chart_bars(html: str, kind: str, css: str) -> list[int]:
    chart = re.search(rf'<figure class="chart" data-kind="{kind}">(.*?)</figure>', html, re.S)
    assert chart, kind
    return [
        int(v) for v in re.findall(rf'<rect class="bar {css}"[^>]*data-value="(\d+)"', chart[1])
    ]


def expected_bars(sent: Sent, started: datetime, kind: EventKind, *, human: bool, size: int):
    bars = [0] * size
    for moment in first_times(sent, kind, human=human):
        bars[bar_of(started, moment)] += 1
    return bars


def test_chart_has_one_bar_per_hour_for_people_and_for_all_recipients(staff_client):
    client = staff_client(Role.ANALYST)
    sent, _ = busy_mailing()
    started = db.session.get(Mailing, sent.mailing_id).started_at
    html = text_of(client.get(f"/staff/results/{sent.mailing_id}"))
    hours = max(bar_of(started, e["occurred_at"]) for e in sent.events) + 1
    assert hours >= 4  # from the hour sending started to the last unsubscribe

    figures = re.findall(r'<figure class="chart" data-kind="(\w+)">(.*?)</figure>', html, re.S)
    assert [kind for kind, _ in figures] == ["open", "click", "action"]
    for _, chart in figures:
        assert re.search(r'<svg role="img" aria-labelledby="(\S+)-title \1-desc"', chart)
        assert "<title id=" in chart and "<desc id=" in chart
    for kind in (EventKind.OPEN, EventKind.CLICK):
        people = chart_bars(html, kind.value, "human")
        every = chart_bars(html, kind.value, "all")
        assert people == expected_bars(sent, started, kind, human=True, size=hours), kind
        assert every == expected_bars(sent, started, kind, human=False, size=hours), kind
        assert sum(people) == sent.recipients(kind, human=True)
    actions = chart_bars(html, "action", "human")
    assert actions == expected_bars(sent, started, EventKind.ACTION, human=True, size=hours)
    assert chart_bars(html, "action", "all") == []  # actions are people's by nature
    # The same numbers as a table, for screen readers and print: one row per hour.
    table = re.search(r'<table class="timeline">.*?<tbody>(.*?)</tbody>', html, re.S).group(1)
    assert table.count('<tr data-unit="hour">') == hours


def test_chart_counts_by_day_after_the_first_72_hours(staff_client):
    client = staff_client(Role.ANALYST)
    sent = sent_mailing(recipients=4, started_ago=timedelta(days=20))
    started = db.session.get(Mailing, sent.mailing_id).started_at
    first = started + timedelta(days=8, hours=1)
    sent.record(EventKind.OPEN, sent.delivery_ids[0], started + timedelta(minutes=3))
    sent.record(EventKind.CLICK, sent.delivery_ids[0], first, link=1)
    sent.record(EventKind.CLICK, sent.delivery_ids[0], first + timedelta(hours=5), link=2)
    sent.record(EventKind.CLICK, sent.delivery_ids[1], first + timedelta(days=1))
    sent.record(EventKind.OPEN, sent.delivery_ids[1], first + timedelta(days=9), machine=True)
    db.session.commit()
    html = text_of(client.get(f"/staff/results/{sent.mailing_id}"))
    size = bar_of(started, first + timedelta(days=9)) + 1
    assert size == 72 + 15  # three days of hours, then the days up to the last event
    people = chart_bars(html, "click", "human")
    assert people == expected_bars(sent, started, EventKind.CLICK, human=True, size=size)
    assert people[bar_of(started, first)] == 1  # two links clicked that day: one recipient
    assert chart_bars(html, "open", "all")[-1] == 1
    assert "per hour for the first 72 hours, then per day (UTC)" in html
    table = re.search(r'<table class="timeline">.*?<tbody>(.*?)</tbody>', html, re.S).group(1)
    assert table.count('<tr data-unit="hour">') == 72
    assert table.count('<tr data-unit="day">') == size - 72


def test_mailing_without_events_has_empty_states(staff_client):
    client = staff_client(Role.ANALYST)
    sent = sent_mailing(recipients=3)
    db.session.commit()
    html = text_of(client.get(f"/staff/results/{sent.mailing_id}"))
    assert "No opens, clicks or actions recorded yet." in html
    assert "<svg" not in html
    assert cells(row(html, 'data-figure="opens"'), "rate") == "0.0%"


def test_rates_are_blank_when_nothing_was_delivered(staff_client):
    client = staff_client(Role.ANALYST)
    sent = sent_mailing(recipients=2, failed=2)
    db.session.commit()
    html = text_of(client.get(f"/staff/results/{sent.mailing_id}"))
    assert cells(row(html, 'data-figure="opens"'), "rate") == "—"


def test_results_list_shows_headline_figures_newest_first(staff_client):
    client = staff_client(Role.ANALYST)
    busy, _ = busy_mailing()
    quiet = sent_mailing("Stop the executions", recipients=4)
    quiet.record(EventKind.OPEN, quiet.delivery_ids[0], utcnow())
    draft = Mailing(name="Unsent draft", subject="x")
    db.session.add(draft)
    db.session.commit()
    html = squash(text_of(client.get("/staff/results/")))
    assert "Unsent draft" not in html
    assert html.index("Stop the executions") < html.index("Free the journalists")
    line = row(html, f'data-mailing-id="{busy.mailing_id}"')
    delivered = busy.delivered
    numbers = re.findall(r'<td class="num">([\d,]+)(?: <span class="muted">\(([^)]*)\))?', line)
    assert numbers == [
        (str(delivered), ""),
        (str(busy.bounced), percent(busy.bounced, delivered)),
        *[
            (str(n), percent(n, delivered))
            for n in (
                busy.recipients(EventKind.OPEN, human=True),
                busy.recipients(EventKind.CLICK, human=True),
                busy.recipients(EventKind.ACTION),
                busy.recipients(EventKind.UNSUBSCRIBE),
            )
        ],
    ]


def test_results_list_pages_by_id(staff_client):
    client = staff_client(Role.ANALYST)
    size = overview.RESULTS_PAGE_SIZE
    ids = [sent_mailing(f"Alert {n}", recipients=0).mailing_id for n in range(size + 1)]
    db.session.commit()
    first = text_of(client.get("/staff/results/"))
    shown = [int(i) for i in re.findall(r'<tr data-mailing-id="(\d+)"', first)]
    assert shown == ids[:0:-1]  # newest first, the oldest left for the next page
    next_url = re.search(r'href="([^"]*after=\d+)" rel="next"', first).group(1)
    assert next_url.endswith(f"after={ids[1]}")
    second = text_of(client.get(next_url))
    assert re.findall(r'<tr data-mailing-id="(\d+)"', second) == [str(ids[0])]
    assert 'rel="next"' not in second


def test_bad_input_gets_a_safe_page(staff_client):
    client = staff_client(Role.ANALYST)
    assert client.get("/staff/results/987654321").status_code == 404
    assert client.get("/staff/results/not-a-number").status_code == 404
    assert client.get("/staff/results/?after=%27%3B--").status_code == 200


def test_results_empty_state_and_access(staff_client, anonymous_client):
    html = text_of(staff_client(Role.ANALYST).get("/staff/results/"))
    assert "No mailing has been sent yet" in html and 'href="/staff/mailings/"' in html
    assert anonymous_client.get("/staff/results/").status_code == 302


def test_mailing_names_are_escaped(staff_client):
    client = staff_client(Role.ANALYST)
    sent = sent_mailing("<script>alert(1)</script>", recipients=1)
    db.session.commit()
    for url in ("/staff/results/", f"/staff/results/{sent.mailing_id}"):
        html = text_of(client.get(url))
        assert "<script>alert(1)" not in html and "&lt;script&gt;" in html


def test_mailing_page_shows_headline_rates(staff_client):
    client = staff_client(Role.ANALYST)
    sent, _ = busy_mailing()
    html = text_of(client.get(f"/staff/results/{sent.mailing_id}"))
    delivered = sent.delivered
    human_opens = sent.recipients(EventKind.OPEN, human=True)
    human_clicks = sent.recipients(EventKind.CLICK, human=True)
    expected = {
        "open_rate": percent(human_opens, delivered),
        "click_rate": percent(human_clicks, delivered),
        "click_to_open": percent(human_clicks, human_opens),
        "action_rate": percent(sent.recipients(EventKind.ACTION), delivered),
        "unsubscribe_rate": percent(sent.recipients(EventKind.UNSUBSCRIBE), delivered),
        "bounce_rate": percent(sent.bounced, delivered),
    }
    for key, value in expected.items():
        card = row(html, f'data-rate="{key}"', "li")
        assert f'<span class="figure">{value}</span>' in card, key
    hard = row(html, 'data-figure="hard_bounces"')
    assert cells(hard, "all") == "1"  # one recipient, a hard and a soft report
    assert cells(row(html, 'data-figure="soft_bounces"'), "all") == "1"


def test_links_table_counts_click_rows_too(staff_client):
    client = staff_client(Role.ANALYST)
    sent, _ = busy_mailing()
    html = text_of(client.get(f"/staff/results/{sent.mailing_id}"))
    for position in (0, 1, 2):
        rows = [
            e
            for e in sent.events
            if e["kind"] == EventKind.CLICK and e["link_position"] == position
        ]
        assert cells(row(html, f'data-position="{position}"'), "clicks") == str(len(rows))


def lists_for(sent: Sent) -> tuple[int, int, list[int]]:
    """Two lists over the recipients: the first six and the last six deliveries' supporters."""
    first, second = MailingList(name="Members"), MailingList(name="<b>Press</b>")
    db.session.add_all([first, second])
    db.session.flush()
    supporters = dict(
        db.session.execute(
            select(Delivery.id, Delivery.supporter_id).where(Delivery.mailing_id == sent.mailing_id)
        ).all()
    )
    ids = sent.delivery_ids
    for list_id, deliveries in ((first.id, ids[:6]), (second.id, ids[6:])):
        db.session.execute(
            insert(ListMembership),
            [{"list_id": list_id, "supporter_id": supporters[d]} for d in deliveries],
        )
    db.session.commit()
    return first.id, second.id, ids[:6]


def test_breakdown_by_list_shows_each_lists_figures(staff_client):
    client = staff_client(Role.ANALYST)
    sent, _ = busy_mailing()
    first, second, members = lists_for(sent)
    page = text_of(client.get(f"/staff/results/{sent.mailing_id}"))
    assert '<label for="breakdown-by">Break down by</label>' in page
    assert '<table class="breakdown"' not in page

    html = text_of(client.get(f"/staff/results/{sent.mailing_id}?breakdown=list"))
    assert re.search(r'<option value="list" selected>', html)
    line = row(html, f'data-group-id="{first}"')
    delivered = sum(1 for d in members if sent.statuses[d] == DeliveryStatus.SENT)
    opened = len(
        {
            e["delivery_id"]
            for e in sent.events
            if e["kind"] == EventKind.OPEN and not e["machine"] and e["delivery_id"] in members
        }
    )
    assert re.search(r'<td class="num recipients">(\d+)</td>', line)[1] == str(len(members))
    assert re.search(r'<td class="num delivered">(\d+)</td>', line)[1] == str(delivered)
    assert re.search(r'<td class="num opens">(\d+) ', line)[1] == str(opened)
    assert "&lt;b&gt;Press&lt;/b&gt;" in row(html, f'data-group-id="{second}"')
    only = text_of(client.get(f"/staff/results/{sent.mailing_id}?breakdown=list&ids={second}"))
    assert f'data-group-id="{first}"' not in only and f'data-group-id="{second}"' in only
    tags = text_of(client.get(f"/staff/results/{sent.mailing_id}?breakdown=tag"))
    assert "No recipient of this mailing is in any tag." in tags


def test_bad_breakdown_gets_an_error_next_to_the_field(staff_client):
    client = staff_client(Role.ANALYST)
    sent, _ = busy_mailing()
    for query in ("breakdown=postcode", "breakdown=list&ids=%27%3B--", "breakdown=<script>"):
        response = client.get(f"/staff/results/{sent.mailing_id}?{query}")
        assert response.status_code == 200, query
    html = text_of(client.get(f"/staff/results/{sent.mailing_id}?breakdown=postcode"))
    assert 'aria-describedby="breakdown-by-error"' in html
    assert 'id="breakdown-by-error">Choose to break the figures down by list' in html


def test_csv_downloads_are_linked_streamed_and_safe(staff_client, anonymous_client):
    client = staff_client(Role.ANALYST)
    sent = sent_mailing(recipients=3)
    hostile = '=HYPERLINK("https://evil.example","x")'
    db.session.add(MailingLink(mailing_id=sent.mailing_id, position=3, url=hostile))
    db.session.flush()
    sent.record(EventKind.CLICK, sent.delivery_ids[0], utcnow(), link=3)
    db.session.commit()
    html = text_of(client.get(f"/staff/results/{sent.mailing_id}"))
    downloaded = {}
    for table in ("deliveries", "events", "links"):
        url = f"/staff/results/{sent.mailing_id}/{table}.csv"
        assert f'href="{url}"' in html, table
        with client.get(url) as response:
            assert response.status_code == 200 and response.mimetype == "text/csv", table
            assert response.is_streamed
            downloaded[table] = response.get_data(as_text=True)
        assert anonymous_client.get(url).status_code == 302
    links, events = downloaded["links"], downloaded["events"]
    assert "'=HYPERLINK" in links and "'=HYPERLINK" in events
    assert ",=HYPERLINK" not in links + events and '"=HYPERLINK' not in links + events
    assert downloaded["deliveries"].count("\n") == 1 + 3
    assert client.get("/staff/results/987654321/links.csv").status_code == 404
    assert client.get(f"/staff/results/{sent.mailing_id}/people.csv").status_code == 404
