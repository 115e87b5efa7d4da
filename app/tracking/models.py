"""Tracking events: opens, clicks, unsubscribes — rows that survive supporter erasure."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Index, String, column, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db import BigId, UtcDateTime, utcnow
from app.extensions import db


class EventKind(enum.StrEnum):
    OPEN = "open"
    CLICK = "click"
    UNSUBSCRIBE = "unsubscribe"
    ACTION = "action"


event_kind_enum = Enum(
    EventKind,
    name="tracking_event_kind",
    values_callable=lambda members: [m.value for m in members],
    validate_strings=True,
)


class TrackingEvent(db.Model):
    """The first time one recipient did one thing (opened, clicked link n …), human or machine.

    Rows are keyed by delivery, not by supporter: erasing a supporter sets supporter_id to NULL
    but the delivery row (and so delivery_id) stays, so counts of distinct recipients stay exact.
    """

    __tablename__ = "tracking_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[EventKind] = mapped_column(event_kind_enum)
    mailing_id: Mapped[int | None] = mapped_column(ForeignKey("mailings.id", ondelete="SET NULL"))
    supporter_id: Mapped[int | None] = mapped_column(
        ForeignKey("supporters.id", ondelete="SET NULL"), index=True
    )
    delivery_id: Mapped[int | None] = mapped_column(
        ForeignKey("deliveries.id", ondelete="SET NULL")
    )
    link_id: Mapped[int | None] = mapped_column(ForeignKey("mailing_links.id", ondelete="SET NULL"))
    # The link's position in the mailing, kept as a plain number: the dedup key must not change
    # when the FK above is nulled by a cascade.
    link_position: Mapped[int | None] = mapped_column()
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    user_agent_class: Mapped[str] = mapped_column(String(60), default="unknown")
    machine: Mapped[bool] = mapped_column(default=False)
    machine_reason: Mapped[str | None] = mapped_column(String(60))

    __table_args__ = (
        # One row per (recipient, kind, link, human-or-machine): repeats are dropped by
        # INSERT … ON CONFLICT DO NOTHING. NULL never equals NULL in a unique index, hence
        # coalesce for opens and unsubscribes (no link); -1 because position 0 is the honeypot.
        Index(
            "uq_tracking_events_once",
            "delivery_id",
            "kind",
            func.coalesce(column("link_position"), -1),
            "machine",
            unique=True,
        ),
        Index("ix_tracking_events_mailing_kind", "mailing_id", "kind"),
    )
