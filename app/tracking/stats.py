"""Per-mailing counts of what recipients did, people and machines apart."""

from __future__ import annotations

from sqlalchemy import func, not_, select

from app.extensions import db
from app.mailings.models import Delivery, DeliveryStatus
from app.tracking.models import EventKind, TrackingEvent


def mailing_stats(mailing_id: int) -> dict:
    """Return unique opens, clicks, unsubscribes and actions (all and human) and deliveries.

    "Unique" means distinct recipients. Events are counted by delivery_id, not supporter_id:
    erasing a supporter nulls supporter_id but keeps the delivery row and its id, so an erased
    recipient still counts exactly once, however many links they clicked.
    """
    rows = db.session.execute(
        select(
            TrackingEvent.kind,
            func.count(TrackingEvent.delivery_id.distinct()),
            func.count(TrackingEvent.delivery_id.distinct()).filter(not_(TrackingEvent.machine)),
        )
        .where(TrackingEvent.mailing_id == mailing_id)
        .group_by(TrackingEvent.kind)
    ).all()
    by_kind = {EventKind(kind): (total, human) for kind, total, human in rows}
    stats = {}
    for name, kind in (
        ("opens", EventKind.OPEN),
        ("clicks", EventKind.CLICK),
        ("unsubscribes", EventKind.UNSUBSCRIBE),
        ("actions", EventKind.ACTION),
    ):
        total, human = by_kind.get(kind, (0, 0))
        stats[name] = {"all": total, "human": human}
    deliveries = dict.fromkeys((s.value for s in DeliveryStatus), 0)
    for status, count in db.session.execute(
        select(Delivery.status, func.count())
        .where(Delivery.mailing_id == mailing_id)
        .group_by(Delivery.status)
    ):
        deliveries[DeliveryStatus(status).value] = count
    deliveries["total"] = sum(deliveries.values())
    stats["deliveries"] = deliveries
    return stats
