"""A mailing's report, its API and its CSVs: every figure worked out again from the rows made."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select

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
from app.privacy import erase_supporter
from app.supporters.models import ListMembership, MailingList, Segment, Supporter, SupporterTag, Tag
from app.tracking import breakdowns, report_csv, reports, services
from app.tracking.models import EventKind

HOSTILE_URL = '=HYPERLINK("https://evil.example/x","Click")'
HOSTILE_EMAIL = '=HYPERLINK("https://evil.example")@example.org'
LINKS = ("https://act.example.org/petition", HOSTILE_URL)


@dataclass
class World:
    """A sent mailing and everything recorded for it, to work the figures out independently."""

    mailing_id: int
    started: datetime
    supporters: dict[int, int]  # delivery id -> supporter id
    statuses: dict[int, DeliveryStatus]
    events: list[dict] = field(default_factory=list)
    bounces: list[tuple[int, BounceKind]] = field(default_factory=list)

    @property
    def delivery_ids(self) -> list[int]:
        return sorted(self.supporters)

    @property
    def sent_ids(self) -> list[int]:
        return [d for d in self.delivery_ids if self.statuses[d] == DeliveryStatus.SENT]

    def record(self, kind: EventKind, delivery_id: int, at: datetime, *, machine=False, link=None):
        row = {
            "kind": kind,
            "mailing_id": self.mailing_id,
            "delivery_id": delivery_id,
            "supporter_id": self.supporters[delivery_id],
            "link_position": link,
            "occurred_at": at,
            "machine": machine,
            "user_agent_class": "bot" if machine else "browser",
        }
        services.insert_events([row])
        self.events.append(row)

    def bounce(self, delivery_id: int, kind: BounceKind) -> None:
        db.session.add(
            BounceEvent(
                kind=kind,
                source="smtp",
                mailing_id=self.mailing_id,
                delivery_id=delivery_id,
                supporter_id=self.supporters[delivery_id],
            )
        )
        self.bounces.append((delivery_id, kind))

    def unique(self, kind: EventKind, *, human=False, link=None, among=None) -> int:
        return len(
            {
                e["delivery_id"]
                for e in self.events
                if e["kind"] == kind
                and not (human and e["machine"])
                and (link is None or e["link_position"] == link)
                and (among is None or e["delivery_id"] in among)
            }
        )

    def first_times(self, kind: EventKind, *, human=False) -> list[datetime]:
        """When each recipient first did it (as a person, if human)."""
        first: dict[int, datetime] = {}
        for e in self.events:
            if e["kind"] == kind and not (human and e["machine"]):
                d = e["delivery_id"]
                first[d] = min(first.get(d, e["occurred_at"]), e["occurred_at"])
        return list(first.values())

    def bounced(self, *kinds: BounceKind) -> int:
        return len({d for d, kind in self.bounces if kind in kinds})


def make_world(recipients: int = 12, *, started_ago=timedelta(hours=6), emails=None) -> World:
    started = (utcnow() - started_ago).replace(microsecond=0)
    mailing = Mailing(
        name="Free the journalists",
        subject="Free the journalists",
        status=MailingStatus.SENT,
        started_at=started,
        total_recipients=recipients,
        links=[MailingLink(position=0, url="https://act.example.org/trap", is_honeypot=True)]
        + [MailingLink(position=n, url=url) for n, url in enumerate(LINKS, start=1)],
    )
    db.session.add(mailing)
    db.session.flush()
    emails = emails or [f"r{mailing.id}-{n}@example.org" for n in range(recipients)]
    db.session.execute(insert(Supporter), [{"email": e, "custom_fields": {}} for e in emails])
    supporter_ids = db.session.scalars(
        select(Supporter.id).where(Supporter.email.in_(emails)).order_by(Supporter.id)
    ).all()
    statuses = [DeliveryStatus.FAILED, DeliveryStatus.DEFERRED, DeliveryStatus.QUEUED]
    rows = [
        {
            "mailing_id": mailing.id,
            "supporter_id": s,
            "batch_no": 0,
            "status": statuses[n] if n < len(statuses) else DeliveryStatus.SENT,
            "sent_at": started if n >= len(statuses) else None,
        }
        for n, s in enumerate(supporter_ids)
    ]
    db.session.execute(insert(Delivery), rows)
    found = db.session.execute(
        select(Delivery.id, Delivery.supporter_id, Delivery.status).where(
            Delivery.mailing_id == mailing.id
        )
    ).all()
    return World(
        mailing.id, started, {r.id: r.supporter_id for r in found}, {r.id: r.status for r in found}
    )


def busy_world(**kwargs) -> World:
    """People and machines opening, clicking, acting, unsubscribing; bounces and a complaint."""
    world = make_world(**kwargs)
    sent = world.sent_ids  # nine delivered
    at = world.started + timedelta(minutes=10)
    for n, d in enumerate(sent[:5]):
        world.record(EventKind.OPEN, d, at + timedelta(minutes=30 * n))
    for d in sent[3:8]:  # a privacy proxy: two of these people opened too
        world.record(EventKind.OPEN, d, at, machine=True)
    world.record(EventKind.CLICK, sent[0], at + timedelta(hours=1), link=1)
    world.record(EventKind.CLICK, sent[0], at + timedelta(hours=1, minutes=1), link=2)
    world.record(EventKind.CLICK, sent[1], at + timedelta(hours=2), link=1)
    world.record(EventKind.CLICK, sent[6], at, machine=True, link=0)  # a scanner, trap link
    world.record(EventKind.CLICK, sent[6], at, machine=True, link=1)
    world.record(EventKind.CLICK, sent[0], at, machine=True, link=1)  # scanned and clicked
    world.record(EventKind.ACTION, sent[0], at + timedelta(hours=3))
    world.record(EventKind.UNSUBSCRIBE, sent[2], at + timedelta(hours=4))
    world.bounce(sent[8], BounceKind.HARD)
    world.bounce(sent[8], BounceKind.HARD)  # reported twice: one recipient
    world.bounce(sent[7], BounceKind.SOFT)
    world.bounce(sent[4], BounceKind.COMPLAINT)
    db.session.commit()
    return world


def test_headline_figures_and_rates_match_the_rows():
    world = busy_world()
    report = reports.mailing_report(world.mailing_id)
    delivered = len(world.sent_ids)
    assert (report.recipients, report.sent, report.failed, report.deferred, report.queued) == (
        12,
        delivered,
        1,
        1,
        1,
    )
    assert report.bounced == world.bounced(BounceKind.HARD, BounceKind.SOFT) == 2
    assert report.hard_bounces == world.bounced(BounceKind.HARD) == 1
    assert report.soft_bounces == world.bounced(BounceKind.SOFT) == 1
    assert report.complaints == world.bounced(BounceKind.COMPLAINT) == 1
    for name, kind in (
        ("opens", EventKind.OPEN),
        ("clicks", EventKind.CLICK),
        ("actions", EventKind.ACTION),
        ("unsubscribes", EventKind.UNSUBSCRIBE),
    ):
        pair = getattr(report, name)
        assert (pair.all, pair.human) == (world.unique(kind), world.unique(kind, human=True)), name
    opens, human_opens = world.unique(EventKind.OPEN), world.unique(EventKind.OPEN, human=True)
    clicks, human_clicks = world.unique(EventKind.CLICK), world.unique(EventKind.CLICK, human=True)
    assert (opens, human_opens, clicks, human_clicks) == (8, 5, 3, 2)
    rates = report.rates
    assert rates.open_rate.all == pytest.approx(opens / delivered)
    assert rates.open_rate.human == pytest.approx(human_opens / delivered)
    assert rates.click_rate.human == pytest.approx(human_clicks / delivered)
    assert rates.click_to_open.all == pytest.approx(clicks / opens)
    assert rates.click_to_open.human == pytest.approx(human_clicks / human_opens)
    assert rates.action_rate == pytest.approx(1 / delivered)
    assert rates.unsubscribe_rate == pytest.approx(1 / delivered)
    assert rates.bounce_rate == pytest.approx(2 / delivered)
    assert rates.complaint_rate == pytest.approx(1 / delivered)


def test_links_count_click_rows_unique_and_human():
    world = busy_world()
    links = {link.position: link for link in reports.mailing_report(world.mailing_id).links}
    assert sorted(links) == [0, 1, 2]
    for position in (0, 1, 2):
        rows = [
            e
            for e in world.events
            if e["kind"] == EventKind.CLICK and e["link_position"] == position
        ]
        link = links[position]
        assert link.clicks == len(rows)
        assert link.unique == world.unique(EventKind.CLICK, link=position)
        assert link.unique_human == world.unique(EventKind.CLICK, link=position, human=True)
    assert (links[1].clicks, links[1].unique, links[1].unique_human) == (4, 3, 2)
    assert links[0].is_honeypot and links[0].unique_human == 0
    assert links[2].url == HOSTILE_URL


def bucket_index(world: World, moment: datetime) -> int:
    start = world.started.replace(minute=0, second=0)
    if moment - start < timedelta(hours=72):
        return int((moment - start) // timedelta(hours=1))
    return 72 + (moment - start - timedelta(hours=72)).days


def test_timeline_is_hourly_for_three_days_then_daily():
    world = make_world(6, started_ago=timedelta(days=12))
    sent = world.sent_ids
    offsets = (
        timedelta(minutes=5),
        timedelta(hours=71, minutes=59),
        timedelta(hours=72, minutes=30),
        timedelta(days=4, hours=1),
        timedelta(days=9),
    )
    for d, offset in zip(sent, offsets, strict=False):
        world.record(EventKind.OPEN, d, world.started + offset)
    world.record(EventKind.CLICK, sent[0], world.started + timedelta(days=9), machine=True, link=1)
    db.session.commit()
    buckets = reports.mailing_report(world.mailing_id).timeline
    last = max(bucket_index(world, e["occurred_at"]) for e in world.events)
    assert len(buckets) == last + 1
    assert [b.unit for b in buckets] == ["hour"] * 72 + ["day"] * (last + 1 - 72)
    for n in range(1, len(buckets)):  # no gaps, no overlaps
        step = timedelta(hours=1) if buckets[n - 1].unit == "hour" else timedelta(days=1)
        assert buckets[n].start == buckets[n - 1].start + step
    for name, kind, human in (
        ("opens", EventKind.OPEN, False),
        ("human_opens", EventKind.OPEN, True),
        ("clicks", EventKind.CLICK, False),
        ("human_clicks", EventKind.CLICK, True),
    ):
        expected = [0] * len(buckets)
        for moment in world.first_times(kind, human=human):
            expected[bucket_index(world, moment)] += 1
        assert [getattr(b, name) for b in buckets] == expected, name
    assert sum(b.human_opens for b in buckets) == world.unique(EventKind.OPEN, human=True)


def test_machines_never_count_as_people():
    world = make_world(5)
    for d in world.sent_ids:
        world.record(EventKind.OPEN, d, world.started, machine=True)
        world.record(EventKind.CLICK, d, world.started, machine=True, link=1)
    db.session.commit()
    report = reports.mailing_report(world.mailing_id)
    assert report.opens.all == report.clicks.all == len(world.sent_ids)
    assert report.opens.human == report.clicks.human == 0
    assert report.rates.open_rate.human == 0 and report.rates.click_to_open.human is None
    assert all(b.human_opens == b.human_clicks == 0 for b in report.timeline)
    assert all(link.unique_human == 0 for link in report.links)


def test_rates_are_none_when_nothing_was_delivered():
    world = make_world(3)  # failed, deferred, queued
    db.session.commit()
    rates = reports.mailing_report(world.mailing_id).rates
    assert rates.open_rate.all is None and rates.bounce_rate is None
    assert reports.mailing_report(world.mailing_id).timeline == []
    assert reports.mailing_report(987654321) is None


def groups(world: World):
    """Two lists, a tag and a segment over the recipients; returns their ids and members."""
    ids = world.delivery_ids
    first, second = MailingList(name="Members"), MailingList(name="Press")
    tag = Tag(name="donor")
    db.session.add_all([first, second, tag])
    db.session.flush()
    members = {first.id: ids[3:9], second.id: ids[6:12]}  # overlapping
    for list_id, deliveries in members.items():
        db.session.execute(
            insert(ListMembership),
            [{"list_id": list_id, "supporter_id": world.supporters[d]} for d in deliveries],
        )
    tagged = ids[::2]
    db.session.execute(
        insert(SupporterTag),
        [{"tag_id": tag.id, "supporter_id": world.supporters[d]} for d in tagged],
    )
    segment = Segment(name="Press donors", definition={"include_lists": [second.id]})
    db.session.add(segment)
    db.session.commit()
    return first.id, second.id, tag.id, segment.id, members, tagged


def test_breakdowns_by_list_tag_and_segment_count_each_group():
    world = busy_world()
    first, second, tag_id, segment_id, members, tagged = groups(world)
    by_list = {g.group_id: g for g in breakdowns.breakdown(world.mailing_id, "list")}
    assert set(by_list) == {first, second}
    for list_id, deliveries in members.items():
        group, among = by_list[list_id], set(deliveries)
        delivered = len(among & set(world.sent_ids))
        assert (group.recipients, group.delivered) == (len(among), delivered)
        assert group.opens.all == world.unique(EventKind.OPEN, among=among)
        assert group.opens.human == world.unique(EventKind.OPEN, human=True, among=among)
        assert group.clicks.human == world.unique(EventKind.CLICK, human=True, among=among)
        assert group.actions == world.unique(EventKind.ACTION, among=among)
        assert group.unsubscribes == world.unique(EventKind.UNSUBSCRIBE, among=among)
        assert group.open_rate.human == pytest.approx(group.opens.human / delivered)
    (only,) = breakdowns.breakdown(world.mailing_id, "list", [second])
    assert only.name == "Press"
    (tag,) = breakdowns.breakdown(world.mailing_id, "tag")
    assert tag.recipients == len(tagged)
    assert tag.opens.human == world.unique(EventKind.OPEN, human=True, among=set(tagged))
    (segment,) = breakdowns.breakdown(world.mailing_id, "segment", [segment_id])
    assert segment.name == "Press donors"
    assert (segment.recipients, segment.opens) == (
        by_list[second].recipients,
        by_list[second].opens,
    )
    assert breakdowns.breakdown(world.mailing_id, "list", [987654321]) == []
    with pytest.raises(breakdowns.UnknownBreakdown):
        breakdowns.breakdown(world.mailing_id, "postcode")


def test_erasing_a_supporter_leaves_every_figure_unchanged():
    world = busy_world()
    before = reports.mailing_report(world.mailing_id)
    for d in world.sent_ids[:3]:  # openers, clickers, the one who acted and the unsubscriber
        erase_supporter(db.session.get(Supporter, world.supporters[d]))
    db.session.commit()
    after = reports.mailing_report(world.mailing_id)
    for name in ("recipients", "sent", "failed", "bounced", "complaints", "opens", "clicks"):
        assert getattr(after, name) == getattr(before, name), name
    assert (after.actions, after.unsubscribes) == (before.actions, before.unsubscribes)
    assert (after.rates, after.timeline, after.links) == (
        before.rates,
        before.timeline,
        before.links,
    )


# The API


def test_report_api_answers_with_every_figure(client, api_token):
    world = busy_world()
    first, second, *_ = groups(world)
    url = f"/api/v1/mailings/{world.mailing_id}/report"
    response = client.get(url, headers=api_token("analyst"))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    report = reports.mailing_report(world.mailing_id)
    assert body["mailing_id"] == world.mailing_id and body["sent"] == report.sent
    assert body["opens"] == {"all": report.opens.all, "human": report.opens.human}
    assert body["hard_bounces"] == 1 and body["soft_bounces"] == 1 and body["complaints"] == 1
    assert body["rates"]["click_to_open"]["human"] == pytest.approx(2 / 5)
    assert body["rates"]["bounce_rate"] == pytest.approx(2 / report.sent)
    assert [b["human_opens"] for b in body["timeline"]] == [b.human_opens for b in report.timeline]
    assert body["timeline"][0]["unit"] == "hour"
    assert {link["position"]: link["unique_human"] for link in body["links"]} == {0: 0, 1: 2, 2: 1}
    assert body["breakdown"] is None

    listed = client.get(f"{url}?breakdown=list&ids={second}", headers=api_token("analyst"))
    assert listed.status_code == 200
    (group,) = listed.get_json()["breakdown"]
    assert group["group_id"] == second and group["name"] == "Press"
    both = client.get(f"{url}?breakdown=list&ids={first}&ids={second}", headers=api_token())
    assert {g["group_id"] for g in both.get_json()["breakdown"]} == {first, second}


def test_report_api_refuses_bad_requests(client, api_token):
    world = make_world(2)
    db.session.commit()
    url = f"/api/v1/mailings/{world.mailing_id}/report"
    headers = api_token("analyst")
    assert client.get(url).status_code == 401
    assert client.get("/api/v1/mailings/987654321/report", headers=headers).status_code == 404
    for query in ("breakdown=postcode", "ids=1", "breakdown=list&ids=x", "colour=red"):
        response = client.get(f"{url}?{query}", headers=headers)
        assert response.status_code == 422, query
        assert "error" in response.get_json()
    assert client.get(f"{url}/people.csv", headers=headers).status_code == 404


def test_report_is_in_the_openapi_document(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/mailings/{mailing_id}/report"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {"breakdown", "ids"}
    schema = spec["components"]["schemas"]["Report"]["properties"]
    assert "description" in schema["sent"] and "rates" in schema


# CSV


def read_csv(response) -> list[dict]:
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_deliveries_csv_has_each_recipient_outcome_and_blanks_erased_emails(client, api_token):
    emails = [HOSTILE_EMAIL] + [f"csv{n}@example.org" for n in range(11)]
    world = busy_world(emails=emails)
    erased = world.sent_ids[1]
    erase_supporter(db.session.get(Supporter, world.supporters[erased]))
    db.session.commit()
    url = f"/api/v1/mailings/{world.mailing_id}/report/deliveries.csv"
    response = client.get(url, headers=api_token("analyst"))
    assert response.is_streamed
    assert "attachment" in response.headers["Content-Disposition"]
    rows = {int(r["delivery_id"]): r for r in read_csv(response)}
    assert sorted(rows) == world.delivery_ids
    hostile = rows[world.delivery_ids[0]]
    assert hostile["email"] == "'" + HOSTILE_EMAIL  # never a formula in a spreadsheet
    assert hostile["status"] == "failed" and hostile["sent_at"] == ""
    assert rows[erased]["email"] == ""
    assert rows[erased]["human_clicked_at"] != ""  # the outcome outlives the person
    sent = world.sent_ids
    assert sum(1 for r in rows.values() if r["opened_at"]) == world.unique(EventKind.OPEN)
    assert sum(1 for r in rows.values() if r["human_opened_at"]) == 5
    assert rows[sent[0]]["acted_at"] != "" and rows[sent[2]]["unsubscribed_at"] != ""
    assert (rows[sent[8]]["bounced"], rows[sent[7]]["bounced"], rows[sent[6]]["bounced"]) == (
        "hard",
        "soft",
        "",
    )
    assert rows[sent[4]]["complained"] == "yes" and rows[sent[5]]["complained"] == "no"


def test_events_and_links_csv(client, api_token):
    world = busy_world()
    base = f"/api/v1/mailings/{world.mailing_id}/report"
    events = read_csv(client.get(f"{base}/events.csv", headers=api_token("analyst")))
    assert len(events) == len(world.events)
    machine_rows = [e for e in events if e["by"] == "machine"]
    assert len(machine_rows) == sum(1 for e in world.events if e["machine"])
    hostile = [e for e in events if e["link_position"] == "2"]
    assert hostile and all(e["link_url"] == "'" + HOSTILE_URL for e in hostile)
    assert {e["kind"] for e in events} == {"open", "click", "action", "unsubscribe"}

    links = read_csv(client.get(f"{base}/links.csv", headers=api_token("analyst")))
    assert [row["position"] for row in links] == ["0", "1", "2"]
    assert links[1]["unique_human"] == "2" and links[1]["clicks"] == "4"
    assert links[2]["url"] == "'" + HOSTILE_URL
    assert client.get(f"{base}/links.csv").status_code == 401


def test_deliveries_csv_streams_in_pieces(client, api_token):
    recipients = report_csv.ROWS_PER_PIECE * 2 + 5
    world = make_world(recipients)
    db.session.commit()
    response = client.get(
        f"/api/v1/mailings/{world.mailing_id}/report/deliveries.csv",
        headers=api_token("analyst"),
        buffered=False,
    )
    with response:
        pieces = [piece for piece in response.response if piece]
    assert len(pieces) == 3  # a piece per ROWS_PER_PIECE rows, never the whole file at once
    body = b"".join(p if isinstance(p, bytes) else p.encode() for p in pieces)
    assert body.count(b"\n") == recipients + 1


# Generated event streams: the report agrees with a model worked out from the rows alone.

event = st.one_of(
    st.tuples(
        st.just(EventKind.OPEN), st.integers(0, 3), st.booleans(), st.none(), st.integers(0, 150)
    ),
    st.tuples(
        st.just(EventKind.CLICK),
        st.integers(0, 3),
        st.booleans(),
        st.sampled_from((0, 1, 2)),
        st.integers(0, 150),
    ),
    st.tuples(
        st.sampled_from((EventKind.ACTION, EventKind.UNSUBSCRIBE)),
        st.integers(0, 3),
        st.just(False),
        st.none(),
        st.integers(0, 150),
    ),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=st.lists(event, min_size=1, max_size=25))
def test_generated_streams_report_what_the_rows_say(stream):
    world = make_world(7, started_ago=timedelta(days=8))
    recipients = world.sent_ids  # four delivered
    members = MailingList(name=f"Half {world.mailing_id}")
    db.session.add(members)
    db.session.flush()
    half = set(recipients[:2])
    db.session.execute(
        insert(ListMembership),
        [{"list_id": members.id, "supporter_id": world.supporters[d]} for d in sorted(half)],
    )
    kept: set[tuple] = set()
    for kind, who, is_machine, link, hours in stream:
        delivery_id = recipients[who]
        key = (delivery_id, kind, link, is_machine)  # one row per recipient, kind, link, verdict
        at = world.started + timedelta(hours=hours, minutes=7)
        world.record(kind, delivery_id, at, machine=is_machine, link=link)
        if key in kept:
            world.events.pop()  # a repeat is dropped: the first row of its key stays
        kept.add(key)
    db.session.flush()

    report = reports.mailing_report(world.mailing_id)
    for name, kind in (
        ("opens", EventKind.OPEN),
        ("clicks", EventKind.CLICK),
        ("actions", EventKind.ACTION),
        ("unsubscribes", EventKind.UNSUBSCRIBE),
    ):
        pair = getattr(report, name)
        assert pair.all == world.unique(kind), name
        assert pair.human == world.unique(kind, human=True), name
    assert report.rates.open_rate.human == pytest.approx(
        world.unique(EventKind.OPEN, human=True) / len(recipients)
    )
    for name, kind, human in (
        ("opens", EventKind.OPEN, False),
        ("human_opens", EventKind.OPEN, True),
        ("clicks", EventKind.CLICK, False),
        ("human_clicks", EventKind.CLICK, True),
        ("actions", EventKind.ACTION, False),
    ):
        expected = [0] * len(report.timeline)
        for moment in world.first_times(kind, human=human):
            expected[bucket_index(world, moment)] += 1
        assert [getattr(b, name) for b in report.timeline] == expected, name
    for link in report.links:
        rows = [
            e
            for e in world.events
            if e["kind"] == EventKind.CLICK and e["link_position"] == link.position
        ]
        assert link.clicks == len(rows)
        assert link.unique == world.unique(EventKind.CLICK, link=link.position)
        assert link.unique_human == world.unique(EventKind.CLICK, link=link.position, human=True)
    (group,) = breakdowns.breakdown(world.mailing_id, "list", [members.id])
    assert group.recipients == group.delivered == len(half)
    assert group.opens == reports.Pair(
        world.unique(EventKind.OPEN, among=half),
        world.unique(EventKind.OPEN, human=True, among=half),
    )
    assert group.clicks.human == world.unique(EventKind.CLICK, human=True, among=half)
    assert group.actions == world.unique(EventKind.ACTION, among=half)
