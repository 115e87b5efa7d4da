"""The audit log: who did what (send, pause, cancel, import, erase, role change, token created)."""

from __future__ import annotations

from sqlalchemy import select

from app.auth.models import AuditEntry
from app.extensions import db


def record(
    actor: str,
    action: str,
    *,
    subject_type: str | None = None,
    subject_id: int | None = None,
    detail: str = "",
) -> AuditEntry:
    """Add an entry in the caller's transaction: it is kept only if what it describes is."""
    entry = AuditEntry(
        actor=actor[:400],
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        detail=detail,
    )
    db.session.add(entry)
    return entry


def recent_entries(
    *, limit: int = 50, before_id: int | None = None, action: str | None = None
) -> list[AuditEntry]:
    """Newest first, a page of `limit` older than `before_id` (keyset pagination)."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    if action:
        query = query.where(AuditEntry.action == action)
    return list(db.session.scalars(query))


def known_actions() -> list[str]:
    """Every action the log holds, for the filter (an index-only scan of a staff-sized log)."""
    return list(
        db.session.scalars(select(AuditEntry.action).distinct().order_by(AuditEntry.action))
    )
