"""The mailings domain's share of GDPR access and erasure: deliveries and bounce events.

Erasure keeps every row, its status and its Message-ID, so a mailing's counts and later bounce
matching stay exact; the supporters domain then unlinks them (a trigger sets a deleted
supporter's deliveries' supporter_id NULL, migration 0018; bounce events: ON DELETE SET NULL).
What goes is free text that may quote the address: SMTP errors, DSN details, webhook payloads.
"""

from __future__ import annotations

from sqlalchemy import select, update

from app.extensions import db
from app.mailings.models import BounceEvent, Delivery, Mailing
from app.supporters.models import Supporter
from app.supporters.privacy import iso


def export_supporter_data(supporter: Supporter) -> dict:
    """Return the mailings the person was sent (with states and Message-IDs) and their bounces."""
    deliveries = db.session.execute(
        select(Delivery, Mailing.name, Mailing.subject)
        .join(Mailing, Mailing.id == Delivery.mailing_id)
        .where(Delivery.supporter_id == supporter.id)
        .order_by(Delivery.id)
    )
    bounces = db.session.scalars(
        select(BounceEvent).where(BounceEvent.supporter_id == supporter.id).order_by(BounceEvent.id)
    )
    return {
        "deliveries": [
            {
                "delivery_id": d.id,
                "mailing_id": d.mailing_id,
                "mailing_name": name,
                "subject": subject,
                "status": d.status.value,
                "attempts": d.attempts,
                "sent_at": iso(d.sent_at),
                "message_id": d.message_id,
                "last_error": d.last_error,
            }
            for d, name, subject in deliveries
        ],
        "bounce_events": [
            {
                "kind": b.kind.value,
                "source": b.source,
                "mailing_id": b.mailing_id,
                "detail": b.detail,
                "occurred_at": iso(b.occurred_at),
            }
            for b in bounces
        ],
    }


def erase_supporter_data(supporter_id: int) -> None:
    """Forget the text of the person's delivery errors and bounces; keep the rows and states."""
    db.session.execute(
        update(Delivery)
        .where(Delivery.supporter_id == supporter_id)
        .values(last_error=None)
        .execution_options(synchronize_session=False)
    )
    # SES notifications and DSN details carry the address.
    db.session.execute(
        update(BounceEvent)
        .where(BounceEvent.supporter_id == supporter_id)
        .values(payload=None, detail=None)
        .execution_options(synchronize_session=False)
    )
