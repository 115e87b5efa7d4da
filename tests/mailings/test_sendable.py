"""The two halves of "a row can be sent", each one SQL expression, checked on real rows."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.db import utcnow
from app.extensions import db
from app.mailings.models import Delivery, DeliveryStatus, due_for_sending
from app.supporters.models import SubscriptionStatus, Supporter, may_be_mailed
from app.supporters.services import change_status
from tests.factories import make_mailing, make_supporter


def test_only_subscribed_supporters_may_be_mailed():
    people = {
        status: make_supporter(f"{status.value}@example.org") for status in SubscriptionStatus
    }
    for status, supporter in people.items():
        change_status(supporter, status, channel="test")
    db.session.flush()
    ids = [s.id for s in people.values()]
    mailable = set(
        db.session.scalars(select(Supporter.id).where(Supporter.id.in_(ids), may_be_mailed()))
    )
    assert mailable == {people[SubscriptionStatus.SUBSCRIBED].id}


def test_a_delivery_whose_supporter_was_erased_may_not_be_mailed():
    mailing = make_mailing()
    delivery = Delivery(mailing_id=mailing.id, supporter_id=None, batch_no=0)
    db.session.add(delivery)
    db.session.flush()
    (value,) = db.session.execute(
        select(may_be_mailed())
        .select_from(Delivery)
        .join(Supporter, Supporter.id == Delivery.supporter_id, isouter=True)
        .where(Delivery.id == delivery.id)
    ).one()
    assert not value  # NULL from the outer join counts as "no"


def test_due_for_sending_is_queued_due_retries_and_expired_leases():
    mailing = make_mailing()
    now = utcnow()
    hour = timedelta(hours=1)
    cases = {
        "queued": (DeliveryStatus.QUEUED, {}, True),
        "retry due": (DeliveryStatus.DEFERRED, {"next_attempt_at": now - hour}, True),
        "retry later": (DeliveryStatus.DEFERRED, {"next_attempt_at": now + hour}, False),
        "lease expired": (DeliveryStatus.SENDING, {"lease_until": now - hour}, True),
        "lease held": (DeliveryStatus.SENDING, {"lease_until": now + hour}, False),
        "sent": (DeliveryStatus.SENT, {}, False),
        "failed": (DeliveryStatus.FAILED, {}, False),
        "suppressed": (DeliveryStatus.SUPPRESSED, {}, False),
        "cancelled": (DeliveryStatus.CANCELLED, {}, False),
    }
    ids = {}
    for n, (name, (status, values, _)) in enumerate(cases.items()):
        supporter = make_supporter(f"due{n}@example.org")
        delivery = Delivery(
            mailing_id=mailing.id, supporter_id=supporter.id, batch_no=0, status=status, **values
        )
        db.session.add(delivery)
        db.session.flush()
        ids[delivery.id] = name
    found = db.session.scalars(
        select(Delivery.id).where(Delivery.mailing_id == mailing.id, due_for_sending(now))
    )
    assert sorted(ids[i] for i in found) == sorted(n for n, (*_, due) in cases.items() if due)
