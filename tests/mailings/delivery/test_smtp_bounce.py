"""An SMTP 5xx while sending is recorded by record_bounce, like every other bounce source."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select

from app.extensions import db
from app.mailings.delivery.launch import request_send, start_mailing
from app.mailings.delivery.sending import send_batch
from app.mailings.feedback.bounces import record_bounce
from app.mailings.models import BounceEvent, BounceKind, Delivery, DeliveryStatus
from app.supporters.models import SubscriptionStatus, Supporter
from tests.factories import make_delivery, make_list, make_mailing, make_supporter, make_supporters


def test_record_bounce_by_delivery_id_links_the_delivery_and_its_supporter():
    ann = make_supporter("ann@example.org")
    mailing = make_mailing()
    delivery = make_delivery(mailing, ann, "<one@clarion.test>")
    outcome = record_bounce(
        kind=BounceKind.HARD,
        source="smtp",
        delivery_id=delivery.id,
        detail="550 5.1.1 no such user",
        soft_bounce_limit=3,
    )
    assert outcome.result == "suppressed"
    assert (outcome.supporter_id, outcome.delivery_id) == (ann.id, delivery.id)
    assert ann.status == SubscriptionStatus.BOUNCED


def test_smtp_refusal_goes_through_the_bounce_state_machine(settings, smtp_sink, redis_conn):
    settings = replace(settings, smtp_url=smtp_sink.url)
    smtp_sink.refuse_with(
        lambda rcpt: "550 5.1.1 no such user" if rcpt.startswith("supporter0@") else None
    )
    audience = make_list()
    ids = make_supporters(2, mailing_list=audience)
    mailing = make_mailing(audience)
    request_send(mailing, settings)
    db.session.commit()
    assert start_mailing(mailing.id, settings)

    assert send_batch(mailing.id, 0, settings).failed == 1

    delivery = db.session.scalars(select(Delivery).where(Delivery.supporter_id == ids[0])).one()
    assert delivery.status == DeliveryStatus.FAILED
    event = db.session.scalars(
        select(BounceEvent).where(BounceEvent.delivery_id == delivery.id)
    ).one()
    assert (event.kind, event.source, event.mailing_id, event.supporter_id) == (
        BounceKind.HARD,
        "smtp",
        mailing.id,
        ids[0],
    )
    bounced = db.session.get(Supporter, ids[0])
    db.session.refresh(bounced)
    change = bounced.history[-1]
    # The same consent record record_bounce writes for SES, webhooks and DSNs.
    assert (change.new_status, change.channel, change.actor) == (
        SubscriptionStatus.BOUNCED,
        "bounce",
        "smtp",
    )
    assert change.detail.startswith("hard bounce: ") and "550 5.1.1" in change.detail
