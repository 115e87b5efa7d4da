"""An A/B test through the real send path: split, per-variant mail, breaker, winner, the rest.

In-process (send_batch against a loopback SMTP sink, events recorded as the pixel and click
views record them); tests/mailings/abtest/test_ab_workers.py runs it with RQ worker processes.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from app.db import utcnow
from app.extensions import db
from app.links.tokens import LinkClaims
from app.mailings.abtest.decision import AbTestError, decide_due_tests, pick_winner, trip_breakers
from app.mailings.abtest.design import configure_ab_test
from app.mailings.abtest.results import ab_results
from app.mailings.compose.services import MailingError
from app.mailings.delivery.launch import request_send, start_mailing
from app.mailings.delivery.sending import send_batch
from app.mailings.models import AbTest, Delivery, DeliveryStatus, Mailing, MailingStatus
from app.tracking.machine import Verdict
from app.tracking.models import EventKind
from app.tracking.services import record_event
from tests.factories import make_list, make_mailing, make_supporters

PERSON = Verdict(machine=False, reason="", ua_class="browser")
PROXY = Verdict(machine=True, reason="apple-mpp", ua_class="apple-mpp")
BODY_B = (
    "<mjml><mj-body><mj-section><mj-column><mj-text>Write to the Minister today: "
    '<a href="https://example.org/write-now">write now</a></mj-text>'
    "</mj-column></mj-section></mj-body></mjml>"
)


def _ab_mailing(settings, count, **test):
    audience = make_list()
    make_supporters(count, mailing_list=audience)
    mailing = make_mailing(audience)
    data = {
        "test_fraction": 0.5,
        "wait_minutes": 60,
        "metric": "opens",
        "variants": [{}, {"subject": "Act before Friday, {{ first_name }}", "from_name": "Maya"}],
    } | test
    configure_ab_test(mailing, data, actor="test")
    db.session.commit()
    return mailing


def _start(settings, mailing):
    request_send(mailing, settings)
    db.session.commit()
    assert start_mailing(mailing.id, settings)
    db.session.refresh(mailing)


def _send_all(settings, mailing, batches):
    for batch_no in batches:
        send_batch(mailing.id, batch_no, settings)


def _by_status(mailing_id):
    return dict(
        db.session.execute(
            select(Delivery.status, func.count())
            .where(Delivery.mailing_id == mailing_id)
            .group_by(Delivery.status)
        ).all()
    )


def _variant_rows(mailing_id):
    return dict(
        db.session.execute(
            select(Delivery.variant_id, func.count())
            .where(Delivery.mailing_id == mailing_id)
            .group_by(Delivery.variant_id)
        ).all()
    )


def _supporters_of(mailing, label):
    variant = next(v for v in mailing.variants if v.label == label)
    return list(
        db.session.scalars(select(Delivery.supporter_id).where(Delivery.variant_id == variant.id))
    )


def test_the_test_portion_is_split_evenly_and_the_rest_is_held(settings, redis_conn):
    settings = replace(settings, batch_size=7)
    mailing = _ab_mailing(
        settings,
        101,
        test_fraction=0.3,
        variants=[{}, {"subject": "B subject"}, {"subject": "C subject"}],
    )
    _start(settings, mailing)
    test = mailing.ab_test
    assert test.test_recipients == 30  # round(101 * 0.3)
    assert _by_status(mailing.id) == {DeliveryStatus.QUEUED: 30, DeliveryStatus.HELD: 71}
    per_variant = _variant_rows(mailing.id)
    assert per_variant.pop(None) == 71
    assert sorted(per_variant.values()) == [10, 10, 10]
    # The test's batches come first and hold only test rows; the rest's batches follow.
    assert test.test_batch_count == 5 and mailing.batch_count == 5 + 11
    test_batches = set(
        db.session.scalars(
            select(Delivery.batch_no).where(
                Delivery.mailing_id == mailing.id, Delivery.variant_id.is_not(None)
            )
        )
    )
    held_batches = set(
        db.session.scalars(
            select(Delivery.batch_no).where(
                Delivery.mailing_id == mailing.id, Delivery.status == DeliveryStatus.HELD
            )
        )
    )
    assert test_batches == set(range(5)) and held_batches == set(range(5, 16))
    assert test.decide_at > utcnow() + timedelta(minutes=59)


def test_two_sends_split_differently(settings, redis_conn):
    """The sample is random, not the lowest ids every time."""
    first = _ab_mailing(settings, 60, test_fraction=0.2)
    _start(settings, first)
    second = make_mailing(make_list("Second"))
    second.audience = first.audience
    configure_ab_test(
        second,
        {"test_fraction": 0.2, "wait_minutes": 5, "variants": [{}, {"subject": "Other"}]},
        actor="test",
    )
    db.session.commit()
    _start(settings, second)
    tested = [
        set(
            db.session.scalars(
                select(Delivery.supporter_id).where(
                    Delivery.mailing_id == m.id, Delivery.variant_id.is_not(None)
                )
            )
        )
        for m in (first, second)
    ]
    assert len(tested[0]) == len(tested[1]) == 12
    assert tested[0] != tested[1]


def test_each_variant_sends_its_own_subject_sender_and_body(settings, smtp_sink, redis_conn):
    settings = replace(settings, smtp_url=smtp_sink.url, batch_size=50)
    mailing = _ab_mailing(
        settings,
        20,
        test_fraction=1.0,
        variants=[
            {},
            {"subject": "Write today, {{ first_name }}", "from_name": "Maya"},
            {"body_mjml": BODY_B},
        ],
    )
    _start(settings, mailing)
    _send_all(settings, mailing, range(mailing.ab_test.test_batch_count))
    by_address = {m.rcpt_tos[0]: m.message for m in smtp_sink.messages}
    assert len(by_address) == 20
    emails = dict(
        db.session.execute(
            select(Delivery.supporter_id, Delivery.variant_id).where(
                Delivery.mailing_id == mailing.id
            )
        ).all()
    )
    labels = {v.id: v.label for v in mailing.variants}
    from app.supporters.models import Supporter

    seen = set()
    for supporter_id, variant_id in emails.items():
        supporter = db.session.get(Supporter, supporter_id)
        message = by_address[supporter.email]
        label = labels[variant_id]
        seen.add(label)
        html = message.get_body(("html",)).get_content()
        if label == "B":
            assert message["Subject"] == f"Write today, {supporter.first_name}"
            assert message["From"].startswith("Maya <")
        else:
            assert message["Subject"].endswith("28 children could be deported")
            assert message["From"].startswith("Clarion Alerts <")
        assert ("Write to the Minister today" in html) == (label == "C")
    assert seen == {"A", "B", "C"}
    # C's body has its own link, numbered after the mailing's, owned by C.
    c = next(v for v in mailing.variants if v.label == "C")
    own = [link for link in mailing.links if link.variant_id == c.id]
    assert [link.url for link in own] == ["https://example.org/write-now"]
    assert own[0].position > max(x.position for x in mailing.links if x.variant_id is None)
    db.session.refresh(mailing)
    assert mailing.status == MailingStatus.SENT  # 100 %: nobody held, so it finishes


def test_the_clock_picks_the_winner_by_human_opens_and_sends_it_to_the_rest(
    settings, smtp_sink, redis_conn
):
    settings = replace(settings, smtp_url=smtp_sink.url, batch_size=20)
    mailing = _ab_mailing(settings, 100, test_fraction=0.4)
    _start(settings, mailing)
    _send_all(settings, mailing, range(mailing.ab_test.test_batch_count))
    assert len(smtp_sink.messages) == 40
    a, b = _supporters_of(mailing, "A"), _supporters_of(mailing, "B")
    # A: every recipient's privacy proxy "opens" (machines) and 2 people; B: 12 people.
    for supporter_id in a:
        record_event(EventKind.OPEN, LinkClaims(mailing.id, supporter_id), PROXY)
    for supporter_id in a[:2]:
        record_event(EventKind.OPEN, LinkClaims(mailing.id, supporter_id), PERSON)
    for supporter_id in b[:12]:
        record_event(EventKind.OPEN, LinkClaims(mailing.id, supporter_id), PERSON)
        record_event(EventKind.OPEN, LinkClaims(mailing.id, supporter_id), PERSON)  # once each
    db.session.commit()

    assert decide_due_tests(settings) == 0  # the wait is not over
    results = ab_results(mailing)
    figures = {v.label: v for v in results.variants}
    assert (figures["A"].opens, figures["A"].human_opens) == (20, 2)
    assert (figures["B"].opens, figures["B"].human_opens) == (12, 12)
    assert results.leader == "B" and results.confidence > 0.99
    assert results.p_value < 0.01

    db.session.execute(
        update(AbTest).where(AbTest.mailing_id == mailing.id).values(decide_at=utcnow())
    )
    db.session.commit()
    assert decide_due_tests(settings) == 1
    db.session.refresh(mailing)
    test = mailing.ab_test
    assert test.winner.label == "B" and test.decided_by == "clock"
    assert test.confidence > 0.99 and test.decision["leader"] == "B"
    assert _by_status(mailing.id)[DeliveryStatus.QUEUED] == 60
    assert decide_due_tests(settings) == 0  # decided once

    _send_all(settings, mailing, range(mailing.batch_count))
    rest = smtp_sink.messages[40:]
    assert len(rest) == 60
    assert all(m.message["Subject"].startswith("Act before Friday") for m in rest)
    assert len({m.rcpt_tos[0] for m in smtp_sink.messages}) == 100  # everyone exactly once
    db.session.refresh(mailing)
    assert mailing.status == MailingStatus.SENT


def test_manual_selection_waits_for_staff_then_sends_their_pick(settings, smtp_sink, redis_conn):
    settings = replace(settings, smtp_url=smtp_sink.url, batch_size=50)
    mailing = _ab_mailing(settings, 30, test_fraction=0.2, selection="manual")
    with pytest.raises(AbTestError, match="once the test has started"):
        pick_winner(mailing, "A", settings, actor="staff:maya@example.org")
    _start(settings, mailing)
    _send_all(settings, mailing, range(mailing.ab_test.test_batch_count))
    db.session.execute(
        update(AbTest).where(AbTest.mailing_id == mailing.id).values(decide_at=utcnow())
    )
    db.session.commit()
    assert decide_due_tests(settings) == 0
    db.session.refresh(mailing.ab_test)
    assert "pick the winner" in mailing.ab_test.note
    assert _by_status(mailing.id)[DeliveryStatus.HELD] == 24

    with pytest.raises(AbTestError, match="No variant 'Z'"):
        pick_winner(mailing, "Z", settings, actor="staff:maya@example.org")
    pick_winner(mailing, "a", settings, actor="staff:maya@example.org")
    db.session.commit()
    with pytest.raises(AbTestError, match="already picked"):
        pick_winner(mailing, "B", settings, actor="staff:maya@example.org")
    _send_all(settings, mailing, range(mailing.batch_count))
    assert len(smtp_sink.messages) == 30
    rest = smtp_sink.messages[6:]
    assert all("28 children" in m.message["Subject"] for m in rest)
    assert mailing.ab_test.decided_by == "staff:maya@example.org"


def test_min_confidence_sends_an_unsure_automatic_test_to_staff(settings, smtp_sink, redis_conn):
    settings = replace(settings, smtp_url=smtp_sink.url, batch_size=50)
    mailing = _ab_mailing(settings, 40, test_fraction=0.5, min_confidence=0.95)
    _start(settings, mailing)
    _send_all(settings, mailing, [0])
    db.session.execute(
        update(AbTest).where(AbTest.mailing_id == mailing.id).values(decide_at=utcnow())
    )
    db.session.commit()
    assert decide_due_tests(settings) == 0  # nobody opened: 50/50 is far from 95 %
    db.session.refresh(mailing.ab_test)
    assert "below the 95%" in mailing.ab_test.note
    assert mailing.ab_test.decided_at is None


def test_the_breaker_stops_a_variant_that_drives_unsubscribes(settings, smtp_sink, redis_conn):
    settings = replace(settings, smtp_url=smtp_sink.url, batch_size=20)
    mailing = _ab_mailing(
        settings, 80, test_fraction=0.5, max_unsubscribe_rate=0.05, breaker_min_sent=2
    )
    _start(settings, mailing)
    send_batch(mailing.id, 0, settings)  # 20 of the 40 test recipients, about 10 of them B's
    sent_b = list(
        db.session.scalars(
            select(Delivery.supporter_id).where(
                Delivery.mailing_id == mailing.id,
                Delivery.status == DeliveryStatus.SENT,
                Delivery.variant_id == next(v.id for v in mailing.variants if v.label == "B"),
            )
        )
    )
    assert 2 <= len(sent_b) < 20  # a random split: all but certain
    for supporter_id in sent_b[:2]:
        record_event(EventKind.UNSUBSCRIBE, LinkClaims(mailing.id, supporter_id), PERSON)
    db.session.commit()

    assert trip_breakers(settings) == 1
    assert trip_breakers(settings) == 0
    db.session.refresh(mailing)
    b = next(v for v in mailing.variants if v.label == "B")
    assert b.stopped_at is not None and "unsubscribe rate" in b.stopped_reason
    queued_b = db.session.scalar(
        select(func.count()).where(
            Delivery.variant_id == b.id, Delivery.status == DeliveryStatus.QUEUED
        )
    )
    assert queued_b == 0
    _send_all(settings, mailing, range(mailing.ab_test.test_batch_count))
    subjects = [m.message["Subject"] for m in smtp_sink.messages]
    assert sum(s.startswith("Act before Friday") for s in subjects) == len(sent_b)
    with pytest.raises(AbTestError, match="was stopped"):
        pick_winner(mailing, "B", settings, actor="test")

    db.session.execute(
        update(AbTest).where(AbTest.mailing_id == mailing.id).values(decide_at=utcnow())
    )
    db.session.commit()
    assert decide_due_tests(settings) == 1
    db.session.refresh(mailing)
    assert mailing.ab_test.winner.label == "A"
    _send_all(settings, mailing, range(mailing.batch_count))
    assert len({m.rcpt_tos[0] for m in smtp_sink.messages}) == 80
    assert len(smtp_sink.messages) == 80


def test_when_every_variant_trips_the_mailing_pauses(settings, smtp_sink, redis_conn):
    settings = replace(settings, smtp_url=smtp_sink.url, batch_size=50)
    mailing = _ab_mailing(
        settings, 20, test_fraction=0.5, max_unsubscribe_rate=0.01, breaker_min_sent=1
    )
    _start(settings, mailing)
    send_batch(mailing.id, 0, settings)
    for label in "AB":
        supporter_id = _supporters_of(mailing, label)[0]
        record_event(EventKind.UNSUBSCRIBE, LinkClaims(mailing.id, supporter_id), PERSON)
    db.session.commit()
    assert trip_breakers(settings) == 2
    db.session.refresh(mailing)
    assert mailing.status == MailingStatus.PAUSED
    assert "every variant" in mailing.status_reason


def test_cancel_cancels_the_held_rest(settings, smtp_sink, redis_conn):
    from app.mailings.delivery.control import cancel

    settings = replace(settings, smtp_url=smtp_sink.url)
    mailing = _ab_mailing(settings, 20, test_fraction=0.5)
    _start(settings, mailing)
    cancel(mailing, actor="test")
    db.session.commit()
    assert _by_status(mailing.id) == {DeliveryStatus.CANCELLED: 20}


def test_invalid_tests_are_refused_with_reasons_and_change_nothing(settings):
    mailing = make_mailing(make_list())
    db.session.commit()
    cases = [
        ({"test_fraction": 0.2, "wait_minutes": 5, "variants": [{}]}, "variants"),
        (
            {"test_fraction": 0, "wait_minutes": 5, "variants": [{}, {"subject": "x"}]},
            "test_fraction",
        ),
        (
            {"test_fraction": 0.2, "wait_minutes": 0, "variants": [{}, {"subject": "x"}]},
            "wait_minutes",
        ),
        (
            {
                "test_fraction": 0.2,
                "wait_minutes": 5,
                "metric": "likes",
                "variants": [{}, {"subject": "x"}],
            },
            "metric",
        ),
        ({"test_fraction": 0.2, "wait_minutes": 5, "variants": [{}, {}]}, "variants"),
        (
            {"test_fraction": 0.2, "wait_minutes": 5, "variants": [{}, {"subject": "{{ bogus }}"}]},
            "variants",
        ),
        (
            {
                "test_fraction": 0.2,
                "wait_minutes": 5,
                "variants": [{}, {"body_mjml": "<mjml><oops"}],
            },
            "variants",
        ),
        ({"test_fraction": 0.2, "wait_minutes": 5, "variants": [{}] * 6}, "variants"),
    ]
    for data, field in cases:
        with pytest.raises(MailingError) as refused:
            configure_ab_test(mailing, data, actor="test")
        assert field in refused.value.details, (data, refused.value.details)
        db.session.rollback()
        assert db.session.get(Mailing, mailing.id).ab_test is None


def test_a_sent_mailing_cannot_change_its_test(settings, redis_conn):
    mailing = _ab_mailing(settings, 5)
    _start(settings, mailing)
    with pytest.raises(MailingError, match="Only a draft"):
        configure_ab_test(
            mailing,
            {"test_fraction": 0.5, "wait_minutes": 5, "variants": [{}, {"subject": "x"}]},
            actor="test",
        )


def test_complaints_count_once_per_recipient_and_trip_the_breaker(settings, smtp_sink, redis_conn):
    from app.mailings.feedback.bounces import record_bounce

    settings = replace(settings, smtp_url=smtp_sink.url, batch_size=50)
    mailing = _ab_mailing(
        settings, 40, test_fraction=0.5, max_complaint_rate=0.05, breaker_min_sent=2
    )
    _start(settings, mailing)
    send_batch(mailing.id, 0, settings)
    a_delivery = db.session.scalar(
        select(Delivery.id).where(
            Delivery.variant_id == next(v.id for v in mailing.variants if v.label == "A")
        )
    )
    for external_id in ("fbl-1", "fbl-2"):  # two reports of one recipient's complaint
        record_bounce(
            kind="complaint",
            source="webhook",
            delivery_id=a_delivery,
            external_id=external_id,
            soft_bounce_limit=3,
        )
    db.session.commit()
    figures = {v.label: v for v in ab_results(mailing).variants}
    assert (figures["A"].complaints, figures["B"].complaints) == (1, 0)
    assert trip_breakers(settings) == 1  # 1 of 10 is 10 %, past 5 %
    db.session.refresh(mailing)
    assert [v.label for v in mailing.variants if v.stopped_at] == ["A"]


def test_a_finished_test_portion_is_counted_once_and_rebuild_agrees(
    settings, smtp_sink, redis_conn
):
    from app.mailings.abtest.decision import settle_tests
    from app.mailings.feedback.bounces import record_bounce
    from app.tracking.rebuild import differences, rebuild, rollup_state

    settings = replace(settings, smtp_url=smtp_sink.url, batch_size=10)
    mailing = _ab_mailing(settings, 50, test_fraction=0.4)
    _start(settings, mailing)
    assert settle_tests(settings) == 0  # the test portion has not been sent yet
    _send_all(settings, mailing, range(mailing.ab_test.test_batch_count))
    a, b = _supporters_of(mailing, "A"), _supporters_of(mailing, "B")
    for supporter_id in a[:3]:
        record_event(EventKind.OPEN, LinkClaims(mailing.id, supporter_id), PROXY)
    for supporter_id in b[:4]:
        record_event(EventKind.CLICK, LinkClaims(mailing.id, supporter_id), PERSON)
    record_event(EventKind.ACTION, LinkClaims(mailing.id, b[0]), PERSON)
    b_delivery = db.session.scalar(
        select(Delivery.id).where(Delivery.mailing_id == mailing.id, Delivery.supporter_id == b[1])
    )
    record_bounce(kind="hard", source="dsn", delivery_id=b_delivery, soft_bounce_limit=3)
    db.session.commit()

    assert settle_tests(settings) == 1
    assert settle_tests(settings) == 0
    db.session.refresh(mailing.ab_test)
    outcomes = mailing.ab_test.variant_outcomes
    assert sorted(figures["sent"] for figures in outcomes.values()) == [10, 10]
    figures = {v.label: v for v in ab_results(mailing).variants}
    assert (figures["A"].opens, figures["A"].human_opens) == (3, 0)
    assert (figures["B"].human_clicks, figures["B"].actions, figures["B"].hard_bounces) == (4, 1, 1)
    # Counted once: a report no longer counts the deliveries (a row changed behind its back
    # does not move the settled figure).
    db.session.execute(
        update(Delivery)
        .where(Delivery.mailing_id == mailing.id, Delivery.supporter_id == a[0])
        .values(status=DeliveryStatus.FAILED)
    )
    assert {v.label: v.sent for v in ab_results(mailing).variants} == {"A": 10, "B": 10}
    db.session.rollback()

    before = rollup_state(mailing.id)
    assert before["variants"]  # the live rollups have the variants' counts
    rebuild(mailing.id)
    db.session.commit()
    assert differences(before, rollup_state(mailing.id)) == 0
