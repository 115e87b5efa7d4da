"""What one supporter was sent and did with it: the mailings part of a supporter's page.

Read-only. Opens marked as machine (mail privacy proxies, scanners) are shown apart from
human opens, because they say the message arrived, not that anyone read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from app.extensions import db
from app.mailings.models import Delivery, DeliveryStatus, Mailing
from app.tracking.models import EventKind, TrackingEvent

RECENT_MAILINGS = 50


@dataclass(frozen=True)
class MailingReceived:
    mailing_id: int
    mailing_name: str
    subject: str
    delivery_status: DeliveryStatus
    sent_at: datetime | None
    opened_at: datetime | None  # the first human open
    machine_open_only: bool  # opened only by a machine: delivered, not known to be read
    clicks: int  # distinct links a human clicked
    acted_at: datetime | None
    unsubscribed_at: datetime | None


def mailings_received(supporter_id: int, *, limit: int = RECENT_MAILINGS) -> list[MailingReceived]:
    """Return the supporter's most recent deliveries, newest first, with what they did."""
    deliveries = db.session.execute(
        select(Delivery, Mailing.name, Mailing.subject)
        .join(Mailing, Mailing.id == Delivery.mailing_id)
        .where(Delivery.supporter_id == supporter_id)
        .order_by(Delivery.id.desc())
        .limit(limit)
    ).all()
    events = _events_by_delivery([delivery.id for delivery, _, _ in deliveries])
    received = []
    for delivery, name, subject in deliveries:
        seen = events.get(delivery.id, {})
        human_open = seen.get((EventKind.OPEN, False))
        received.append(
            MailingReceived(
                mailing_id=delivery.mailing_id,
                mailing_name=name,
                subject=subject,
                delivery_status=delivery.status,
                sent_at=delivery.sent_at,
                opened_at=human_open[0] if human_open else None,
                machine_open_only=human_open is None and (EventKind.OPEN, True) in seen,
                clicks=seen.get((EventKind.CLICK, False), (None, 0))[1],
                acted_at=_first(seen, EventKind.ACTION),
                unsubscribed_at=_first(seen, EventKind.UNSUBSCRIBE),
            )
        )
    return received


def _events_by_delivery(delivery_ids: list[int]) -> dict[int, dict]:
    """Map delivery id to {(kind, machine): (first time, how many)}."""
    if not delivery_ids:
        return {}
    rows = db.session.execute(
        select(
            TrackingEvent.delivery_id,
            TrackingEvent.kind,
            TrackingEvent.machine,
            func.min(TrackingEvent.occurred_at),
            func.count(),
        )
        .where(TrackingEvent.delivery_id.in_(delivery_ids))
        .group_by(TrackingEvent.delivery_id, TrackingEvent.kind, TrackingEvent.machine)
    )
    found: dict[int, dict] = {}
    for delivery_id, kind, machine, first_at, count in rows:
        found.setdefault(delivery_id, {})[(kind, machine)] = (first_at, count)
    return found


def _first(seen: dict, kind: EventKind) -> datetime | None:
    times = [first_at for (k, _), (first_at, _) in seen.items() if k == kind]
    return min(times) if times else None
