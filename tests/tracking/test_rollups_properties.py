"""Generated event streams: live rollups, the rebuild and the API agree with a model of them.

The model below is written from the rules, not from the code: events are recorded in the order
they are applied (a drained batch in order of time), a recipient has at most one row per
(kind, link, human-or-machine), a person's click that makes three distinct links within the
burst window is a scanner's, and so are the human clicks and opens of that window before it.
Every figure is then worked out from the model's rows.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app.db import utcnow
from app.extensions import db
from app.links.tokens import LinkClaims
from app.mailings.models import Delivery, DeliveryStatus, Mailing, MailingLink, MailingStatus
from app.privacy import erase_supporter
from app.supporters.models import Supporter
from app.tracking import buffer, machine, services
from app.tracking.models import EventKind, LinkFirstClick
from app.tracking.rebuild import rebuild, rollup_state
from app.tracking.rollups import STAMP_COLUMNS
from app.tracking.stats import mailing_stats

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
SCRIPT = "python-requests/2.32.3"
RECIPIENTS = 3
HONEYPOT = 0
LINKS = (1, 2, 3)
_emails = itertools.count()

# Times: mostly within a few seconds of each other (bursts, ties, repeats), some hours later;
# the base is just before an hour boundary so first times fall in two hours.
offsets = st.one_of(
    st.integers(0, 16).map(lambda n: n * 0.5),
    st.integers(1, 4).map(lambda h: h * 3600.0 - 1.5),
)
opens = st.tuples(st.just("o"), st.integers(0, RECIPIENTS - 1), st.booleans(), st.just(0), offsets)
clicks = st.tuples(
    st.just("c"),
    st.integers(0, RECIPIENTS - 1),
    st.booleans(),
    st.sampled_from((HONEYPOT, *LINKS, *LINKS)),
    offsets,
)
# A link scanner with a browser's user agent: three links of one mail within a second.
scans = st.tuples(st.integers(0, RECIPIENTS - 1), st.integers(0, 16), st.permutations(LINKS)).map(
    lambda s: [("c", s[0], False, link, s[1] * 0.5 + n * 0.5) for n, link in enumerate(s[2])]
)
batch = st.tuples(
    st.lists(st.one_of(opens, clicks, clicks), min_size=1, max_size=10),
    st.lists(scans, max_size=1),
).map(lambda parts: ("batch", parts[0] + [e for scan in parts[1] for e in scan]))
# Repeating a batch delivers its events twice, as a drainer that lost its lock does.
repeat = st.just(("repeat", None))
form = st.tuples(
    st.sampled_from(("action", "unsubscribe")), st.integers(0, RECIPIENTS - 1), offsets
).map(lambda f: (f[0], f[1:]))
streams = st.lists(st.one_of(batch, batch, repeat, form), min_size=1, max_size=6)


def sent_mailing():
    """A sent mailing with a honeypot and three links, and one delivery per recipient."""
    mailing = Mailing(
        name="Stream",
        subject="Stream",
        status=MailingStatus.SENT,
        links=[MailingLink(position=HONEYPOT, url="https://act.example.org/t", is_honeypot=True)]
        + [MailingLink(position=n, url=f"https://act.example.org/{n}") for n in LINKS],
    )
    db.session.add(mailing)
    db.session.flush()
    people = []
    for _ in range(RECIPIENTS):
        supporter = Supporter(email=f"stream{next(_emails)}@example.org")
        db.session.add(supporter)
        db.session.flush()
        delivery = Delivery(
            mailing_id=mailing.id,
            supporter_id=supporter.id,
            batch_no=0,
            status=DeliveryStatus.SENT,
            sent_at=utcnow() - timedelta(days=1),
        )
        db.session.add(delivery)
        db.session.flush()
        people.append((supporter.id, delivery.id))
    return mailing.id, people


def base_time() -> datetime:
    hour = utcnow().replace(minute=0, second=0, microsecond=0) - timedelta(hours=8)
    return hour - timedelta(seconds=3)


class Model:
    """The rows tracking_events should hold: {(delivery, kind, link or -1, machine): time}."""

    def __init__(self):
        self.rows: dict[tuple, datetime] = {}

    def insert(self, delivery, kind, position, is_machine, when):
        self.rows.setdefault((delivery, kind, position, is_machine), when)

    def open(self, delivery, user_agent, when):
        self.insert(delivery, "open", -1, user_agent == SCRIPT, when)

    def click(self, delivery, position, user_agent, when):
        since = when - timedelta(seconds=machine.BURST_WINDOW_SECONDS)
        recent = {
            pos
            for (d, kind, pos, _), at in self.rows.items()
            if d == delivery and kind == "click" and since <= at <= when
        } | {position}
        burst = False
        if position == HONEYPOT or user_agent == SCRIPT:
            is_machine = True
        else:
            burst = len(recent) >= machine.BURST_LINKS
            is_machine = burst
        self.insert(delivery, "click", position, is_machine, when)
        self.insert(delivery, "open", -1, is_machine, when)
        if burst:
            for key, at in list(self.rows.items()):
                d, kind, pos, was_machine = key
                rejudged = d == delivery and kind in ("click", "open") and not was_machine
                if rejudged and since <= at <= when:
                    del self.rows[key]
                    self.rows.setdefault((d, kind, pos, True), at)

    def form(self, delivery, kind, when):
        self.insert(delivery, kind, -1, False, when)

    # What the figures should be, from the rows alone.
    def stamps(self) -> dict[int, dict]:
        found: dict[int, dict] = defaultdict(lambda: dict.fromkeys(STAMP_COLUMNS))
        names = {
            ("open", False): "opened_at",
            ("click", False): "clicked_at",
            ("action", False): "acted_at",
            ("unsubscribe", False): "unsubscribed_at",
        }
        for (delivery, kind, _, is_machine), at in self.rows.items():
            columns = [names[kind, False]]
            if not is_machine and kind in ("open", "click"):
                columns.append(f"human_{names[kind, False]}")
            for column in columns:
                known = found[delivery][column]
                found[delivery][column] = at if known is None else min(known, at)
        return dict(found)

    def state(self) -> dict:
        counter_of = {
            "opened_at": "opens",
            "human_opened_at": "human_opens",
            "clicked_at": "clicks",
            "human_clicked_at": "human_clicks",
            "acted_at": "actions",
            "unsubscribed_at": "unsubscribes",
        }
        mailing: dict = defaultdict(int)
        hourly: dict = defaultdict(lambda: defaultdict(int))
        for stamps in self.stamps().values():
            for column, at in stamps.items():
                if at is not None:
                    mailing[counter_of[column]] += 1
                    hourly[_hour(at)][counter_of[column]] += 1
        clickers: dict = defaultdict(set)
        people: dict = defaultdict(set)
        links: dict = defaultdict(lambda: defaultdict(int))
        for (delivery, kind, position, is_machine), at in self.rows.items():
            if kind not in ("open", "click"):
                continue
            names = [f"{kind}_events"] + ([] if is_machine else [f"human_{kind}_events"])
            for name in names:
                mailing[name] += 1
                hourly[_hour(at)][name] += 1
            if kind == "click":
                clickers[position].add(delivery)
                if not is_machine:
                    people[position].add(delivery)
                for name in names:
                    links[position][name] += 1
        for position in clickers:
            links[position]["clicks"] = len(clickers[position])
            if people[position]:
                links[position]["human_clicks"] = len(people[position])
        return {
            "mailing": dict(mailing),
            "hourly": {hour: dict(counts) for hour, counts in hourly.items()},
            "links": {position: dict(counts) for position, counts in links.items()},
            "variants": {},  # not an A/B test: no variant counts (tests/mailings/abtest has them)
        }

    def stats(self) -> dict:
        figures = self.state()["mailing"]

        def pair(every, human):
            return {"all": figures.get(every, 0), "human": figures.get(human, 0)}

        return {
            "opens": pair("opens", "human_opens"),
            "clicks": pair("clicks", "human_clicks"),
            "actions": pair("actions", "actions"),
            "unsubscribes": pair("unsubscribes", "unsubscribes"),
        }


def _hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def play(mailing_id, people, steps, model: Model) -> None:
    """Record the stream through the real paths, and into the model."""
    base = base_time()
    last_batch: list = []
    for step, payload in steps:
        if step == "repeat":
            events = last_batch
        elif step == "batch":
            events = [
                (
                    kind,
                    mailing_id,
                    people[r][0],
                    position,
                    SCRIPT if by_script else BROWSER,
                    "GET",
                    base + timedelta(seconds=offset),
                )
                for kind, r, by_script, position, offset in payload
            ]
            last_batch = events
        else:
            r, offset = payload
            when = base + timedelta(seconds=offset)
            services.record_event_at(
                db.session.connection(),
                EventKind(step),
                LinkClaims(mailing_id, people[r][0]),
                machine.Verdict(False, "", "browser"),
                when,
            )
            model.form(people[r][1], step, when)
            continue
        if not events:
            continue
        buffer.apply_events(list(events))
        delivery_of = {supporter: delivery for supporter, delivery in people}
        # Drained in order of time; ties keep their order in the batch (a stable sort).
        for kind, _, supporter, position, user_agent, _, when in sorted(events, key=lambda e: e[6]):
            if kind == "o":
                model.open(delivery_of[supporter], user_agent, when)
            else:
                model.click(delivery_of[supporter], position, user_agent, when)


def live_stamps(mailing_id) -> dict[int, dict]:
    columns = [Delivery.__table__.c[name] for name in STAMP_COLUMNS]
    rows = db.session.execute(
        select(Delivery.id, *columns)
        .where(Delivery.mailing_id == mailing_id)
        .execution_options(populate_existing=True)
    )
    return {
        delivery_id: dict(zip(STAMP_COLUMNS, stamps, strict=True))
        for delivery_id, *stamps in rows
        if any(stamps)
    }


def first_clicks(mailing_id) -> dict:
    return {
        (row.delivery_id, row.link_position): (row.clicked_at, row.human_clicked_at)
        for row in db.session.scalars(
            select(LinkFirstClick)
            .where(LinkFirstClick.mailing_id == mailing_id)
            .execution_options(populate_existing=True)
        )
    }


def figures(stats: dict) -> dict:
    return {name: stats[name] for name in ("opens", "clicks", "actions", "unsubscribes")}


EXAMPLES = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@EXAMPLES
@given(steps=streams)
def test_live_rollups_and_rebuild_agree_with_the_model(steps):
    mailing_id, people = sent_mailing()
    model = Model()
    play(mailing_id, people, steps, model)

    live = rollup_state(mailing_id)
    assert live == model.state()
    assert live_stamps(mailing_id) == model.stamps()
    assert figures(mailing_stats(mailing_id)) == model.stats()
    clicked = first_clicks(mailing_id)

    rebuild(mailing_id)
    assert rollup_state(mailing_id) == live
    assert live_stamps(mailing_id) == model.stamps()
    assert first_clicks(mailing_id) == clicked


@EXAMPLES
@given(steps=streams, erased=st.integers(0, RECIPIENTS - 1))
def test_erasing_a_supporter_changes_no_count(steps, erased):
    mailing_id, people = sent_mailing()
    model = Model()
    play(mailing_id, people, steps, model)
    before, stats = rollup_state(mailing_id), mailing_stats(mailing_id)

    erase_supporter(db.session.get(Supporter, people[erased][0]))
    # Their buffered events still arriving afterwards record nothing.
    theirs = [
        (step, [e for e in payload if e[1] == erased]) if step == "batch" else (step, payload)
        for step, payload in steps
        if step != "repeat" and (step == "batch" or payload[0] == erased)
    ]
    play(mailing_id, people, theirs, Model())

    assert rollup_state(mailing_id) == before
    assert mailing_stats(mailing_id) == stats
    rebuild(mailing_id)
    assert rollup_state(mailing_id) == before
