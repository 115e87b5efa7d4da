"""Bounces and complaints reported after sending: record them and suppress the address.

Every source (SES, the generic webhook, DSNs from a bounce mailbox, an SMTP 5xx while sending)
ends in `record_bounce`, so the state machine lives in one place: a hard bounce or a complaint
suppresses at once, soft bounces suppress once they reach the configured limit, and nothing here
ever resubscribes.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.parser import HeaderParser
from email.utils import parsedate_to_datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from app.db import dialect_name, utcnow
from app.extensions import db
from app.mailings.models import AbVariantRollup, BounceEvent, BounceKind, Delivery
from app.supporters.emails import email_for_lookup
from app.supporters.models import SubscriptionStatus, Supporter
from app.supporters.services import change_status

EXTERNAL_ID_MAX = 300  # BounceEvent.external_id is a String(300)
DETAIL_MAX = 2000

SUPPRESSING_STATUS = {
    BounceKind.HARD: SubscriptionStatus.BOUNCED,
    BounceKind.SOFT: SubscriptionStatus.BOUNCED,
    BounceKind.COMPLAINT: SubscriptionStatus.COMPLAINED,
}


@dataclass(frozen=True)
class BounceOutcome:
    """What `record_bounce` did with one reported bounce or complaint."""

    duplicate: bool = False
    event_id: int | None = None
    supporter_id: int | None = None
    delivery_id: int | None = None
    suppressed: bool = False  # this event changed the supporter's status

    @property
    def unknown_recipient(self) -> bool:
        return not self.duplicate and self.supporter_id is None

    @property
    def result(self) -> str:
        if self.duplicate:
            return "duplicate"
        if self.supporter_id is None:
            return "unknown_recipient"
        return "suppressed" if self.suppressed else "recorded"


def record_bounce(
    *,
    kind: BounceKind | str,
    source: str,
    email: str | None = None,
    message_id: str | None = None,
    delivery_id: int | None = None,
    detail: str | None = None,
    external_id: str | None = None,
    occurred_at: datetime | None = None,
    payload: dict | None = None,
    soft_bounce_limit: int,
) -> BounceOutcome:
    """Store one bounce or complaint and suppress the supporter if it calls for it; no commit.

    The delivery is the one given by id (an SMTP refusal while sending), else the one sent with
    `message_id`; the supporter is that delivery's, else whoever has `email` now.
    """
    kind = BounceKind(kind)
    if delivery_id is not None:
        delivery = db.session.get(Delivery, delivery_id)
    else:
        delivery = find_delivery(message_id) if message_id else None
    counted_for_variant = (
        delivery is not None and delivery.variant_id is not None and kind in VARIANT_BOUNCE_COUNTERS
    )
    if counted_for_variant:
        # Two reports for one A/B test recipient at once take turns, so exactly one is first.
        db.session.refresh(delivery, with_for_update=True)
    address = normalise_address(email) if email else None
    supporter_id = delivery.supporter_id if delivery is not None else None
    if address and supporter_id is not None:
        # The supporter may have changed address since the send: the old one bouncing says
        # nothing about the new one.
        current = db.session.scalar(select(Supporter.email).where(Supporter.id == supporter_id))
        if current != address:
            supporter_id = None
    if supporter_id is None and address:
        supporter_id = db.session.scalar(select(Supporter.id).where(Supporter.email == address))

    detail = detail[:DETAIL_MAX] if detail else None
    event_id = _insert_event(
        kind=kind,
        source=source,
        mailing_id=delivery.mailing_id if delivery is not None else None,
        supporter_id=supporter_id,
        delivery_id=delivery.id if delivery is not None else None,
        detail=detail,
        external_id=bounded_external_id(external_id) if external_id else None,
        occurred_at=_aware(occurred_at) if occurred_at else utcnow(),
        payload=payload,
    )
    if event_id is None:
        return BounceOutcome(duplicate=True)
    if counted_for_variant:
        _count_for_variant(delivery, kind)

    suppressed = False
    if supporter_id is not None:
        supporter = _locked_supporter(supporter_id)
        suppressed = _apply(supporter, kind, source, detail, soft_bounce_limit)
        db.session.flush()
    return BounceOutcome(
        event_id=event_id,
        supporter_id=supporter_id,
        delivery_id=delivery.id if delivery is not None else None,
        suppressed=suppressed,
    )


# An A/B variant's counters of recipients with a report of these kinds (its circuit breaker
# and its figures read them).
VARIANT_BOUNCE_COUNTERS = {BounceKind.COMPLAINT: "complaints", BounceKind.HARD: "hard_bounces"}


def _count_for_variant(delivery: Delivery, kind: BounceKind) -> None:
    """Count the recipient in their variant's rollup if this is their first report of the kind."""
    reports = db.session.scalar(
        select(func.count()).where(
            BounceEvent.mailing_id == delivery.mailing_id,
            BounceEvent.kind == kind,
            BounceEvent.delivery_id == delivery.id,
        )
    )
    if reports != 1:
        return
    counter = VARIANT_BOUNCE_COUNTERS[kind]
    insert = pg_insert if dialect_name(db.session) == "postgresql" else sqlite_insert
    statement = insert(AbVariantRollup).values(
        variant_id=delivery.variant_id, mailing_id=delivery.mailing_id, **{counter: 1}
    )
    db.session.execute(
        statement.on_conflict_do_update(
            index_elements=[AbVariantRollup.variant_id],
            set_={counter: getattr(AbVariantRollup, counter) + 1},
        )
    )


def _apply(
    supporter: Supporter, kind: BounceKind, source: str, detail: str | None, limit: int
) -> bool:
    """Move the supporter along the bounce state machine; return True if now suppressed."""
    if kind == BounceKind.SOFT:
        supporter.soft_bounce_count = (supporter.soft_bounce_count or 0) + 1
        if supporter.soft_bounce_count < max(limit, 1):
            return False
        why = f"{supporter.soft_bounce_count} soft bounces (limit {limit})"
    else:
        why = "hard bounce" if kind == BounceKind.HARD else "spam complaint"
    # Only a subscribed address moves: an earlier unsubscribe or bounce stays the record of why
    # we stopped, and nothing reported by a mail system may ever resubscribe anyone.
    if supporter.status != SubscriptionStatus.SUBSCRIBED:
        return False
    return change_status(
        supporter,
        SUPPRESSING_STATUS[kind],
        channel="complaint" if kind == BounceKind.COMPLAINT else "bounce",
        actor=source,
        detail=f"{why}: {detail}" if detail else why,
    )


def _insert_event(**values) -> int | None:
    """Insert the event; return its id, or None when its external_id was recorded before."""
    if values["external_id"] is None:
        event = BounceEvent(**values)
        db.session.add(event)
        db.session.flush()
        return event.id
    if dialect_name(db.session) == "postgresql":
        # ON CONFLICT rather than catching the error: a failed INSERT would abort the
        # caller's whole transaction, and a concurrent duplicate waits here instead of racing.
        given = {name: value for name, value in values.items() if value is not None}
        return db.session.scalar(
            pg_insert(BounceEvent)
            .values(**given)
            .on_conflict_do_nothing(index_elements=[BounceEvent.external_id])
            .returning(BounceEvent.id)
        )
    try:
        with db.session.begin_nested():
            event = BounceEvent(**values)
            db.session.add(event)
        return event.id
    except IntegrityError:
        return None


def _locked_supporter(supporter_id: int) -> Supporter:
    # Two bounces for one supporter at once must not lose a soft-bounce increment.
    return db.session.scalars(
        select(Supporter)
        .where(Supporter.id == supporter_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def find_delivery(message_id: str) -> Delivery | None:
    """Return the delivery sent with this Message-ID (with or without its angle brackets)."""
    core = strip_message_id(message_id)
    if not core:
        return None
    return db.session.scalars(
        select(Delivery)
        .where(Delivery.message_id.in_([f"<{core}>", core]))
        .order_by(Delivery.id)
        .limit(1)
    ).first()


def strip_message_id(message_id: str) -> str:
    return (message_id or "").strip().removeprefix("<").removesuffix(">").strip()


def normalise_address(email: str) -> str:
    """Return the stored form of an address a bounce report names, without angle brackets."""
    return email_for_lookup(email.strip().removeprefix("<").removesuffix(">"))


def bounded_external_id(external_id: str) -> str:
    """Fit an external id into its column; long ones become a stable hash of themselves."""
    if len(external_id) <= EXTERNAL_ID_MAX:
        return external_id
    return "sha256:" + hashlib.sha256(external_id.encode()).hexdigest()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# --- Delivery status notifications (DSNs) found in a bounce mailbox --------------------------


@dataclass
class DsnImportSummary:
    messages: int = 0
    hard: int = 0
    soft: int = 0
    unknown: int = 0
    duplicates: int = 0
    not_bounces: int = 0
    unreadable: int = 0
    suppressed: int = 0
    errors: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return (
            f"Read {self.messages} messages: {self.hard} hard bounces, {self.soft} soft bounces, "
            f"{self.unknown} for unknown recipients, {self.duplicates} duplicates (already "
            f"recorded), {self.not_bounces} not recognised as bounces, {self.unreadable} "
            f"unreadable; {self.suppressed} supporters suppressed."
        )


MESSAGE_ID_LINE = re.compile(r"^Message-ID:\s*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)
HEADER_PARTS = ("message/rfc822", "text/rfc822-headers")


def record_dsn(msg: Message, summary: DsnImportSummary, *, soft_bounce_limit: int) -> None:
    """Record every bounced address a DSN reports, counting what happened in `summary`."""
    from flufl.bounce import all_failures

    temporary, permanent = all_failures(msg)
    if not temporary and not permanent:
        summary.not_bounces += 1
        return
    dsn_id = strip_message_id(msg.get("Message-ID", "")) or _content_hash(msg)
    original_id = original_message_id(msg)
    details = recipient_details(msg)
    occurred_at = _date_header(msg)
    found = [(BounceKind.HARD, a) for a in sorted(permanent)]
    # An address both delayed and failed in one report has failed.
    found += [(BounceKind.SOFT, a) for a in sorted(temporary - permanent)]
    for kind, raw in found:
        address = normalise_address(raw.decode("ascii", "replace"))
        if kind == BounceKind.SOFT and original_id:
            # MTAs repeat "still trying" warnings for one message; count that message once.
            external_id = f"dsn-delayed:{original_id}:{address}"
        else:
            external_id = f"dsn:{dsn_id}:{address}"
        outcome = record_bounce(
            kind=kind,
            source="dsn",
            email=address,
            message_id=original_id,
            detail=details.get(address),
            external_id=external_id,
            occurred_at=occurred_at,
            payload={
                "dsn_message_id": dsn_id,
                "original_message_id": original_id,
                "recipient": address,
                "subject": str(msg.get("Subject", ""))[:300],
            },
            soft_bounce_limit=soft_bounce_limit,
        )
        if outcome.duplicate:
            summary.duplicates += 1
        elif outcome.unknown_recipient:
            summary.unknown += 1
        elif kind == BounceKind.HARD:
            summary.hard += 1
        else:
            summary.soft += 1
        summary.suppressed += int(outcome.suppressed)


def original_message_id(msg: Message) -> str | None:
    """Find the Message-ID of the message that bounced, from the parts a DSN returns."""
    for part in msg.walk():
        content_type = part.get_content_type()
        if content_type == "message/rfc822" and part.is_multipart():
            found = part.get_payload(0).get("Message-ID")
        elif content_type == "text/rfc822-headers":
            found = HeaderParser().parsestr(_text(part)).get("Message-ID")
        else:
            continue
        if found and strip_message_id(str(found)):
            return strip_message_id(str(found))
    # Exim and other plain-text bounces quote the original headers in the body.
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            match = MESSAGE_ID_LINE.search(_text(part))
            if match:
                return strip_message_id(match.group(1))
    return None


def recipient_details(msg: Message) -> dict[str, str]:
    """Map each address in a message/delivery-status part to its status and diagnostic."""
    details = {}
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status" or not part.is_multipart():
            continue
        for block in part.get_payload():
            recipient = str(block.get("Final-Recipient", ""))
            _, _, address = recipient.partition(";")
            if not address.strip():
                continue
            found = [
                " ".join(str(block.get(name)).split())
                for name in ("Status", "Diagnostic-Code")
                if block.get(name)
            ]
            if found:
                details[normalise_address(address)] = "; ".join(found)
    return details


def _text(part: Message) -> str:
    data = part.get_payload(decode=True)
    if isinstance(data, bytes):
        return data.decode(part.get_content_charset() or "utf-8", "replace")
    return str(part.get_payload())


def _date_header(msg: Message) -> datetime | None:
    try:
        return _aware(parsedate_to_datetime(str(msg["Date"])))
    except (TypeError, ValueError, IndexError):
        return None


def _content_hash(msg: Message) -> str:
    """Identify a DSN that has no Message-ID by its content, so re-imports still match."""
    try:
        raw = msg.as_bytes()
    except (UnicodeError, LookupError, ValueError):
        raw = str(msg).encode("utf-8", "replace")
    return "sha256-" + hashlib.sha256(raw).hexdigest()[:40]
