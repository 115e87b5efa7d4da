"""Opens and clicks buffered in Redis: drained into rows, repeats dropped, Redis down survived."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from app import create_app
from app.clock import run_ticks
from app.db import utcnow
from app.extensions import db, init_limiter
from app.links.tokens import LinkClaims, Purpose
from app.tracking import buffer, services
from app.tracking.models import EventKind, TrackingEvent
from app.tracking.views import PIXEL, register_tracking
from tests.factories import make_delivery, make_sent_mailing, make_supporter
from tests.tracking.conftest import drain

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
UA = {"User-Agent": FIREFOX}


def rows(kind=None):
    query = select(TrackingEvent).order_by(TrackingEvent.id)
    if kind:
        query = query.where(TrackingEvent.kind == kind)
    return db.session.scalars(query).all()


def queued(settings) -> int:
    buffer.outbox.flush()
    return buffer._client(settings.redis_url).llen(buffer.events_key(settings))


@pytest.fixture(scope="module")
def redis_down_app(app, settings):
    """The app with Redis on a port nobody listens on: a real refused connection."""
    application = create_app(
        replace(settings, redis_url="redis://127.0.0.1:1/0"), {"TESTING": True}
    )
    if "tracking" not in application.blueprints:
        register_tracking(application)
    yield application
    # One limiter object: the dead app pointed it at the dead Redis; later tests need ours.
    init_limiter(app, settings)


def test_open_waits_in_redis_until_drained(client, recipient, settings):
    response = client.get(recipient.path(Purpose.OPEN), headers=UA)
    assert buffer.outbox.flush() == 1
    assert response.status_code == 200 and response.data == PIXEL
    assert queued(settings) == 1 and rows() == []
    assert drain() == 1
    assert queued(settings) == 0
    (event,) = rows()
    assert (event.kind, event.delivery_id, event.machine) == (
        EventKind.OPEN,
        recipient.delivery_id,
        False,
    )
    assert event.user_agent_class == "browser"
    assert utcnow() - event.occurred_at < timedelta(seconds=30)


def test_repeats_are_dropped_within_a_batch_and_across_drains(client, recipient):
    for _ in range(3):
        client.get(recipient.path(Purpose.OPEN), headers=UA)
    assert drain() == 3
    client.get(recipient.path(Purpose.OPEN), headers=UA)
    client.get(f"{recipient.path(Purpose.CLICK)}/1", headers=UA)
    client.get(f"{recipient.path(Purpose.CLICK)}/1", headers=UA)
    assert drain() == 3
    assert len(rows(EventKind.OPEN)) == 1 and len(rows(EventKind.CLICK)) == 1


def test_a_batch_recorded_twice_is_recorded_once(client, recipient, settings):
    # A drainer that dies after its commit, before trimming, leaves the batch to the next one.
    client.get(recipient.path(Purpose.OPEN), headers={"User-Agent": "Mozilla/5.0"})
    client.get(f"{recipient.path(Purpose.CLICK)}/2", headers=UA)
    buffer.outbox.flush()
    raw = buffer._client(settings.redis_url).lrange(buffer.events_key(settings), 0, -1)
    buffer.apply_events([buffer._parse(r) for r in raw])
    db.session.commit()
    assert drain() == 2
    kinds = sorted((e.kind.value, e.machine) for e in rows())
    assert kinds == [("click", False), ("open", False), ("open", True)]


def test_an_unreadable_entry_is_dropped_and_the_rest_recorded(client, recipient, settings):
    buffer._client(settings.redis_url).rpush(buffer.events_key(settings), b"not json", b"[1]")
    client.get(recipient.path(Purpose.OPEN), headers=UA)
    assert drain() == 3
    assert len(rows()) == 1 and queued(settings) == 0


def test_the_worker_clock_drains_the_buffer(client, recipient, settings):
    client.get(recipient.path(Purpose.OPEN), headers=UA)
    buffer.outbox.flush()  # what the web process's outbox thread does within FLUSH_SECONDS
    assert run_ticks(settings)["events"] == 1
    assert len(rows(EventKind.OPEN)) == 1


def test_redis_down_records_directly(redis_down_app, recipient):
    client = redis_down_app.test_client()
    response = client.get(recipient.path(Purpose.OPEN), headers=UA)
    assert response.status_code == 200 and response.data == PIXEL
    assert buffer.outbox.flush() == 1
    assert buffer.breaker.is_open()  # later flushes skip Redis for a few seconds
    assert len(rows(EventKind.OPEN)) == 1
    response = client.get(f"{recipient.path(Purpose.CLICK)}/1", headers=UA)
    assert response.status_code == 302
    assert response.headers["Location"] == "https://act.example.org/petition"
    assert buffer.outbox.flush() == 1
    (opened,) = rows(EventKind.OPEN)
    (clicked,) = rows(EventKind.CLICK)
    assert not opened.machine and not clicked.machine and clicked.link_position == 1


def test_drain_with_redis_down_takes_nothing(redis_down_app):
    assert buffer.drain_events(redis_down_app.config["CLARION"]) == 0


# (seconds after the first event, kind, link position, user agent): a scanner following every
# link, a person clicking later, the same person's open, and a later re-click.
SCENARIO = [
    (0.0, "o", 0, FIREFOX),
    (0.2, "c", 1, FIREFOX),
    (0.5, "c", 2, FIREFOX),
    (0.9, "c", 3, FIREFOX),
    (4.0, "c", 2, FIREFOX),
    (4.5, "o", 0, "Mozilla/5.0"),
    (9.0, "c", 1, "Barracuda Sentinel (EE)"),
    (60.0, "c", 0, FIREFOX),  # the honeypot
]


def _recipient(email, sent_ago=timedelta(hours=1)):
    mailing = make_sent_mailing()
    supporter = make_supporter(email)
    delivery = make_delivery(mailing, supporter, sent_ago=sent_ago)
    db.session.commit()
    return LinkClaims(mailing.id, supporter.id), delivery.id


def _recorded(delivery_id):
    return sorted(
        (e.kind.value, e.link_position, e.machine, e.machine_reason, e.user_agent_class)
        for e in rows()
        if e.delivery_id == delivery_id
    )


def _one_by_one(claims, start):
    """What recording each request at once (the path before the buffer) produced."""
    connection = db.session.connection()
    for offset, kind, position, ua in SCENARIO:
        when = start + timedelta(seconds=offset)
        if kind == "o":
            verdict = services.machine.classify("open", ua, "GET", None, [], False)
            services.record_event_at(connection, EventKind.OPEN, claims, verdict, when)
        else:
            link = services.find_link(claims.mailing_id, position)
            since = when - timedelta(seconds=services.machine.BURST_WINDOW_SECONDS)
            services.record_click_at(connection, claims, position, link, ua, "GET", when, since)
    db.session.commit()


def _buffered(claims, start, split):
    """The same events drained from the buffer, in two batches split at `split`."""
    events = [
        (
            kind,
            claims.mailing_id,
            claims.supporter_id,
            position,
            ua,
            "GET",
            start + timedelta(seconds=o),
        )
        for o, kind, position, ua in SCENARIO
    ]
    # Out of order within a batch, as events from several web processes arrive.
    for batch in (events[:split][::-1], events[split:][::-1]):
        buffer.apply_events(batch)
        db.session.commit()


@pytest.mark.parametrize("split", [0, 2, 3, 5])
def test_clicks_are_classified_as_when_recorded_at_once(split):
    start = utcnow() - timedelta(minutes=5)
    direct, direct_delivery = _recipient("direct@example.org")
    buffered, buffered_delivery = _recipient("buffered@example.org")
    _one_by_one(direct, start)
    _buffered(buffered, start, split)
    expected = _recorded(direct_delivery)
    assert _recorded(buffered_delivery) == expected
    # The scenario does exercise the rules: the burst, a later human click, the others.
    reasons = {r[3] for r in expected if r[0] == "click"}
    assert {"burst", "honeypot", None} <= reasons


def test_a_click_seconds_after_delivery_is_still_too_fast_when_drained_later(client, tokens):
    claims, delivery_id = _recipient("fast@example.org", sent_ago=timedelta(seconds=2))
    token = tokens.dumps(Purpose.CLICK, claims.mailing_id, claims.supporter_id)
    assert client.get(f"/c/{token}/1", headers=UA).status_code == 302
    drain()
    (click,) = rows(EventKind.CLICK)
    assert click.machine and click.machine_reason == "too-fast"


def test_outbox_thread_pushes_on_its_own(client, recipient, settings):
    client.get(recipient.path(Purpose.OPEN), headers=UA)
    buffer.outbox._wake.set()  # as FLUSH_SECONDS passing or FLUSH_COUNT events would
    deadline = utcnow() + timedelta(seconds=5)
    connection = buffer._client(settings.redis_url)
    while connection.llen(buffer.events_key(settings)) == 0 and utcnow() < deadline:
        time.sleep(0.01)
    assert connection.llen(buffer.events_key(settings)) == 1
    assert drain() == 1 and len(rows(EventKind.OPEN)) == 1
