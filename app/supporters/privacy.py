"""The supporters domain's share of GDPR access (art. 15) and erasure (art. 17).

app/privacy.py runs every domain's share; this one erases last, because deleting the row is
what unlinks the other domains' rows (their supporter_id is ON DELETE SET NULL, or for
deliveries set NULL by a trigger: migration 0018).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update

from app.extensions import db
from app.supporters.emails import email_hash  # the one hash erased_emails and imports share
from app.supporters.models import (
    ErasedEmail,
    ImportRejection,
    ListMembership,
    MailingList,
    SubscriptionChange,
    Supporter,
)
from app.supporters.services import PROFILE_FIELDS


def export_supporter_data(supporter: Supporter) -> dict:
    """Return the person's profile, lists, tags, consent history and rejected import rows."""
    memberships = db.session.execute(
        select(MailingList.id, MailingList.name, ListMembership.created_at)
        .join(ListMembership, ListMembership.list_id == MailingList.id)
        .where(ListMembership.supporter_id == supporter.id)
        .order_by(MailingList.id)
    )
    rejections = db.session.scalars(
        _rejections_naming(supporter.email).order_by(ImportRejection.id)
    )
    return {
        "supporter": {
            "id": supporter.id,
            "email": supporter.email,
            **{name: getattr(supporter, name) for name in PROFILE_FIELDS},
            "status": supporter.status.value,
            "soft_bounce_count": supporter.soft_bounce_count,
            "created_at": iso(supporter.created_at),
            "updated_at": iso(supporter.updated_at),
        },
        "custom_fields": dict(supporter.custom_fields or {}),
        "lists": [
            {"id": i, "name": name, "joined_at": iso(joined)} for i, name, joined in memberships
        ],
        "tags": [tag.name for tag in sorted(supporter.tags, key=lambda t: t.name)],
        "consent_history": [change_as_dict(change) for change in supporter.history],
        "import_rejections": [
            {
                "import_id": r.import_id,
                "row_number": r.row_number,
                "reason": r.reason,
                "raw": r.raw,
            }
            for r in rejections
        ],
    }


def erase_supporter_data(supporter_id: int) -> None:
    """Delete the person; remember only a hash of the address if they had opted out.

    Memberships, tags and consent history go with the row by cascade. A rejected CSV row that
    holds their address keeps its row number and reason (the import's report still adds up)
    but loses the raw text.
    """
    supporter = db.session.get(Supporter, supporter_id)
    if supporter is None:
        return
    if supporter.is_suppressed:
        key = email_hash(supporter.email)
        erased = db.session.get(ErasedEmail, key)
        if erased is None:
            db.session.add(ErasedEmail(email_hash=key, status=supporter.status))
        else:
            erased.status = supporter.status
    db.session.execute(
        update(ImportRejection)
        .where(
            ImportRejection.id.in_(
                _rejections_naming(supporter.email).with_only_columns(ImportRejection.id)
            )
        )
        .values(raw=None)
        .execution_options(synchronize_session=False)
    )
    db.session.delete(supporter)
    db.session.flush()


def _rejections_naming(email: str):
    # autoescape: an address may hold "_" or "%", which LIKE would otherwise read as wildcards.
    return select(ImportRejection).where(
        func.lower(ImportRejection.raw).contains(email.lower(), autoescape=True)
    )


def change_as_dict(change: SubscriptionChange) -> dict:
    return {
        "old_status": change.old_status.value if change.old_status else None,
        "new_status": change.new_status.value,
        "channel": change.channel,
        "actor": change.actor,
        "detail": change.detail,
        "changed_at": iso(change.changed_at),
    }


def iso(value: datetime | None) -> str | None:
    """Return a timestamp as ISO 8601 for the export (None stays None)."""
    return value.isoformat() if value is not None else None
