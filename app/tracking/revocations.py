"""Withdrawn links: staff revoke every link of one mailing, or every link sent to one supporter.

A mail is forwarded, or lands in the wrong inbox, and its signed links act for the recipient.
A revocation row makes every token for its mailing (or its supporter) signed before
`revoked_at` stop working; tokens signed later (a re-send) work again. Token timestamps are
whole seconds, so a token signed in the very second of a revocation counts as revoked: the
mistake goes the safe way.

Which links are revoked:
- action, preferences and web view (`/a/`, `/p/`, `/v/`): a friendly 410 page, "This link has
  been withdrawn";
- open pixel and tracked clicks (`/o/`, `/c/`): answered as usual (the GIF, the redirect) so
  the mail still reads normally, but nothing is recorded;
- unsubscribe (`/u/`, the confirm page, the RFC 8058 one-click POST and the mailto address):
  NEVER. A supporter must always be able to opt out (CAN-SPAM, GDPR art. 21, RFC 8058).

A revocation does not stop a send in progress: the batches still to go sign new tokens, which
work. Cancel the mailing first.

Delay: the check sits on every tracked request, and revocations are rare, so each process keeps
the whole table (latest revocation per mailing and per supporter) for CACHE_SECONDS. A
revocation is enforced at once in the process that made it and within CACHE_SECONDS in every
other web process.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from flask import current_app
from sqlalchemy import CheckConstraint, ForeignKey, String, func, select
from sqlalchemy.orm import Mapped, mapped_column

from app.db import BigId, UtcDateTime, utcnow
from app.errors import NotFound
from app.extensions import db
from app.links.tokens import LinkClaims, Purpose
from app.mailings.models import Mailing
from app.supporters.models import Supporter
from app.tracking.problems import LinkProblem

CACHE_SECONDS = 5.0
MAX_REASON_LENGTH = 500

# Pages that act or show personal data answer 410; pixels and clicks quietly record nothing.
REFUSED_PURPOSES = frozenset({Purpose.ACTION, Purpose.PREFERENCES, Purpose.VIEW})
UNRECORDED_PURPOSES = frozenset({Purpose.OPEN, Purpose.CLICK})


class LinkRevocation(db.Model):
    """Every link of one mailing, or sent to one supporter, signed before revoked_at is void."""

    __tablename__ = "link_revocations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    mailing_id: Mapped[int | None] = mapped_column(ForeignKey("mailings.id", ondelete="CASCADE"))
    supporter_id: Mapped[int | None] = mapped_column(
        ForeignKey("supporters.id", ondelete="CASCADE")
    )
    revoked_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    revoked_by: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(String(MAX_REASON_LENGTH))

    __table_args__ = (
        CheckConstraint("(mailing_id IS NULL) <> (supporter_id IS NULL)", name="one_target"),
    )


class UnknownTarget(NotFound, LookupError):
    """No mailing or supporter has that id."""


def revoke_mailing_links(
    mailing_id: int, *, actor: str, reason: str | None = None
) -> LinkRevocation:
    """Revoke every link of a mailing signed until now; the caller commits."""
    if db.session.get(Mailing, mailing_id) is None:
        raise UnknownTarget(f"No mailing with id {mailing_id}.")
    return _revoke(LinkRevocation(mailing_id=mailing_id), actor, reason)


def revoke_supporter_links(
    supporter_id: int, *, actor: str, reason: str | None = None
) -> LinkRevocation:
    """Revoke every link sent to a supporter until now; the caller commits."""
    if db.session.get(Supporter, supporter_id) is None:
        raise UnknownTarget(f"No supporter with id {supporter_id}.")
    return _revoke(LinkRevocation(supporter_id=supporter_id), actor, reason)


def _revoke(revocation: LinkRevocation, actor: str, reason: str | None) -> LinkRevocation:
    revocation.revoked_at = utcnow()
    revocation.revoked_by = actor
    revocation.reason = (reason or "").strip()[:MAX_REASON_LENGTH] or None
    db.session.add(revocation)
    db.session.flush()
    # Reload on the next check rather than now: this transaction may still roll back.
    clear_cache()
    return revocation


@dataclass
class _Snapshot:
    loaded_at: float = float("-inf")
    by_mailing: dict[int, datetime] = field(default_factory=dict)
    by_supporter: dict[int, datetime] = field(default_factory=dict)


_CACHE_KEY = "clarion.link_revocations"
_lock = threading.Lock()


def clear_cache() -> None:
    """Forget this app's cached revocations, so the next check reads the table."""
    current_app.extensions.pop(_CACHE_KEY, None)


def _snapshot() -> _Snapshot:
    snapshot = current_app.extensions.get(_CACHE_KEY)
    if snapshot is not None and time.monotonic() - snapshot.loaded_at < CACHE_SECONDS:
        return snapshot
    with _lock:
        snapshot = current_app.extensions.get(_CACHE_KEY)
        if snapshot is not None and time.monotonic() - snapshot.loaded_at < CACHE_SECONDS:
            return snapshot
        snapshot = _Snapshot(loaded_at=time.monotonic())
        latest = func.max(LinkRevocation.revoked_at)
        snapshot.by_mailing = dict(
            db.session.execute(
                select(LinkRevocation.mailing_id, latest)
                .where(LinkRevocation.mailing_id.is_not(None))
                .group_by(LinkRevocation.mailing_id)
            ).all()
        )
        snapshot.by_supporter = dict(
            db.session.execute(
                select(LinkRevocation.supporter_id, latest)
                .where(LinkRevocation.supporter_id.is_not(None))
                .group_by(LinkRevocation.supporter_id)
            ).all()
        )
        current_app.extensions[_CACHE_KEY] = snapshot
        return snapshot


def _aware(value: datetime) -> datetime:
    # Stored UTC; a driver that drops the zone on an aggregate must not make the compare raise.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def is_revoked(claims: LinkClaims, issued_at: datetime) -> bool:
    """Return True when the token's mailing or supporter was revoked after it was signed."""
    snapshot = _snapshot()
    for revoked_at in (
        snapshot.by_mailing.get(claims.mailing_id),
        snapshot.by_supporter.get(claims.supporter_id),
    ):
        # >= : token times are whole seconds, so the revocation's own second counts as before.
        if revoked_at is not None and _aware(revoked_at) >= issued_at.replace(microsecond=0):
            return True
    return False


def check_not_revoked(purpose: Purpose, claims: LinkClaims, issued_at: datetime) -> bool:
    """Return whether the link may be used and recorded; raise the 410 page for revoked pages.

    Unsubscribe links always pass. A revoked open or click returns False: answer as usual,
    record nothing.
    """
    if purpose == Purpose.UNSUBSCRIBE or not is_revoked(claims, issued_at):
        return True
    if purpose in REFUSED_PURPOSES:
        raise LinkProblem(
            410,
            "This link has been withdrawn",
            "This link no longer works. If you were expecting to use it, please look for a more "
            "recent email from us, or contact us.",
        )
    return False
