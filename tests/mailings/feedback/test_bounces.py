"""record_bounce: the bounce and complaint state machine."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from app.extensions import db
from app.mailings.feedback.bounces import record_bounce
from app.mailings.models import BounceEvent, BounceKind
from app.supporters.models import SubscriptionStatus
from tests.factories import make_delivery, make_mailing, make_supporter

MESSAGE_ID = "<6f1c2e9a0b3d4e5f8a7b6c5d4e3f2a1b@clarion.test>"


def _history(supporter):
    db.session.refresh(supporter)
    return [(c.old_status, c.new_status, c.channel, c.actor) for c in supporter.history]


def test_hard_bounce_by_message_id_links_delivery_and_suppresses():
    ann = make_supporter("ann@example.org")
    mailing = make_mailing()
    delivery = make_delivery(mailing, ann, MESSAGE_ID)

    outcome = record_bounce(
        kind="hard",
        source="ses",
        message_id=MESSAGE_ID.strip("<>"),  # providers often drop the brackets
        detail="550 5.1.1 user unknown",
        external_id="ses:feedback-1:ann@example.org",
        occurred_at=datetime(2024, 5, 14, 9, 12, tzinfo=UTC),
        soft_bounce_limit=3,
    )

    assert outcome.result == "suppressed"
    assert (outcome.supporter_id, outcome.delivery_id) == (ann.id, delivery.id)
    event = db.session.get(BounceEvent, outcome.event_id)
    assert (event.kind, event.mailing_id, event.supporter_id, event.delivery_id) == (
        BounceKind.HARD,
        mailing.id,
        ann.id,
        delivery.id,
    )
    assert event.occurred_at == datetime(2024, 5, 14, 9, 12, tzinfo=UTC)
    assert ann.status == SubscriptionStatus.BOUNCED
    assert _history(ann)[-1] == (
        SubscriptionStatus.SUBSCRIBED,
        SubscriptionStatus.BOUNCED,
        "bounce",
        "ses",
    )
    assert "550 5.1.1 user unknown" in ann.history[-1].detail


def test_complaint_by_email_marks_complained():
    bea = make_supporter("bea@example.org")

    outcome = record_bounce(
        kind=BounceKind.COMPLAINT,
        source="webhook",
        email="  Bea@Example.ORG ",
        detail="abuse",
        soft_bounce_limit=3,
    )

    assert outcome.suppressed and outcome.delivery_id is None
    assert bea.status == SubscriptionStatus.COMPLAINED
    assert _history(bea)[-1][1:] == (SubscriptionStatus.COMPLAINED, "complaint", "webhook")


def test_soft_bounces_suppress_only_at_the_limit():
    cat = make_supporter("cat@example.org")
    outcomes = [
        record_bounce(
            kind="soft", source="webhook", email=cat.email, external_id=f"e{n}", soft_bounce_limit=3
        )
        for n in range(3)
    ]

    assert [o.suppressed for o in outcomes] == [False, False, True]
    assert cat.soft_bounce_count == 3
    assert cat.status == SubscriptionStatus.BOUNCED
    change = cat.history[-1]
    assert change.detail.startswith("3 soft bounces (limit 3)")


def test_duplicate_external_id_is_dropped_without_breaking_the_transaction():
    dan = make_supporter("dan@example.org")
    first = record_bounce(
        kind="soft", source="dsn", email=dan.email, external_id="dsn:x:dan", soft_bounce_limit=3
    )
    again = record_bounce(
        kind="soft", source="dsn", email=dan.email, external_id="dsn:x:dan", soft_bounce_limit=3
    )

    assert first.result == "recorded" and again.result == "duplicate"
    assert dan.soft_bounce_count == 1
    # The session is still usable after the conflict.
    assert db.session.scalar(select(func.count()).select_from(BounceEvent)) == 1


def test_long_external_ids_are_hashed_consistently():
    eve = make_supporter("eve@example.org")
    long_id = "x" * 400
    first = record_bounce(
        kind="hard", source="dsn", email=eve.email, external_id=long_id, soft_bounce_limit=3
    )
    again = record_bounce(
        kind="hard", source="dsn", email=eve.email, external_id=long_id, soft_bounce_limit=3
    )
    assert not first.duplicate and again.duplicate
    assert db.session.get(BounceEvent, first.event_id).external_id.startswith("sha256:")


def test_unknown_recipient_is_recorded_without_a_supporter():
    outcome = record_bounce(
        kind="hard", source="webhook", email="nobody@example.org", soft_bounce_limit=3
    )

    assert outcome.result == "unknown_recipient" and outcome.unknown_recipient
    event = db.session.get(BounceEvent, outcome.event_id)
    assert event.supporter_id is None and event.delivery_id is None


def test_never_unsuppresses_or_rewrites_an_earlier_opt_out():
    fay = make_supporter("fay@example.org", status="unsubscribed")
    before = _history(fay)

    outcome = record_bounce(kind="complaint", source="ses", email=fay.email, soft_bounce_limit=3)

    assert not outcome.suppressed and outcome.result == "recorded"
    assert fay.status == SubscriptionStatus.UNSUBSCRIBED
    assert _history(fay) == before


def test_bounce_of_an_old_address_does_not_suppress_the_new_one():
    gus = make_supporter("gus.old@example.org")
    delivery = make_delivery(make_mailing(), gus, MESSAGE_ID)
    gus.email = "gus.new@example.org"
    db.session.flush()

    outcome = record_bounce(
        kind="hard",
        source="dsn",
        email="gus.old@example.org",
        message_id=MESSAGE_ID,
        soft_bounce_limit=3,
    )

    assert outcome.unknown_recipient and outcome.delivery_id == delivery.id
    assert gus.status == SubscriptionStatus.SUBSCRIBED
