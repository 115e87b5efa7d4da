"""Helpers shared by the mailing tests."""

from __future__ import annotations

from app.extensions import db
from app.mailings.models import Delivery, DeliveryStatus, Mailing
from app.supporters.models import Supporter
from app.supporters.services import upsert_supporter


def make_supporter(email: str, **data) -> Supporter:
    supporter, _ = upsert_supporter({"email": email, **data}, actor="test")
    return supporter


def make_mailing(name: str = "Free the journalists") -> Mailing:
    mailing = Mailing(name=name, subject=name)
    db.session.add(mailing)
    db.session.flush()
    return mailing


def make_delivery(mailing: Mailing, supporter: Supporter, message_id: str) -> Delivery:
    delivery = Delivery(
        mailing_id=mailing.id,
        supporter_id=supporter.id,
        batch_no=0,
        status=DeliveryStatus.SENT,
        message_id=message_id,
    )
    db.session.add(delivery)
    db.session.flush()
    return delivery
