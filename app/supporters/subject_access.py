"""GDPR subject access: gather everything stored about one supporter, JSON-ready."""

from __future__ import annotations

from sqlalchemy import select

from app.db import utcnow
from app.extensions import db
from app.supporters.models import ListMembership, MailingList, SubscriptionChange, Supporter
from app.supporters.services import PROFILE_FIELDS


def export_supporter(supporter: Supporter) -> dict:
    """Gather everything stored about one person (the GDPR access request), JSON-ready."""
    from app.mailings.models import BounceEvent, Delivery, Mailing

    memberships = db.session.execute(
        select(MailingList.id, MailingList.name, ListMembership.created_at)
        .join(ListMembership, ListMembership.list_id == MailingList.id)
        .where(ListMembership.supporter_id == supporter.id)
        .order_by(MailingList.id)
    )
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
        "exported_at": _iso(utcnow()),
        "supporter": {
            "id": supporter.id,
            "email": supporter.email,
            **{name: getattr(supporter, name) for name in PROFILE_FIELDS},
            "status": supporter.status.value,
            "soft_bounce_count": supporter.soft_bounce_count,
            "created_at": _iso(supporter.created_at),
            "updated_at": _iso(supporter.updated_at),
        },
        "custom_fields": dict(supporter.custom_fields or {}),
        "lists": [
            {"id": i, "name": name, "joined_at": _iso(joined)} for i, name, joined in memberships
        ],
        "tags": [tag.name for tag in sorted(supporter.tags, key=lambda t: t.name)],
        "consent_history": [change_as_dict(change) for change in supporter.history],
        "deliveries": [
            {
                "mailing_id": d.mailing_id,
                "mailing_name": name,
                "subject": subject,
                "status": d.status.value,
                "attempts": d.attempts,
                "sent_at": _iso(d.sent_at),
                "message_id": d.message_id,
            }
            for d, name, subject in deliveries
        ],
        "bounce_events": [
            {
                "kind": b.kind.value,
                "source": b.source,
                "mailing_id": b.mailing_id,
                "detail": b.detail,
                "occurred_at": _iso(b.occurred_at),
            }
            for b in bounces
        ],
    }


def change_as_dict(change: SubscriptionChange) -> dict:
    return {
        "old_status": change.old_status.value if change.old_status else None,
        "new_status": change.new_status.value,
        "channel": change.channel,
        "actor": change.actor,
        "detail": change.detail,
        "changed_at": _iso(change.changed_at),
    }


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None
