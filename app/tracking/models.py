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
        ForeignKey("supporters.id", ondelete="SET NULL")
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
        # Counting distinct recipients per mailing and kind reads this index alone (stats.py).
        Index(
            "ix_tracking_events_mailing_kind_delivery",
            "mailing_id",
            "kind",
            "delivery_id",
            postgresql_include=["machine"],
        ),
        # A supporter's events in time order, with what the behaviour segments ask of them
        # ("opened or clicked as a person since …", the sunset list) answered from the index
        # alone. It also serves the erasure's and the foreign key's lookups by supporter.
        Index(
            "ix_tracking_events_supporter_time",
            "supporter_id",
            "occurred_at",
            postgresql_include=["kind", "machine"],
        ),
    )


def _counter() -> Mapped[int]:
    return mapped_column(default=0, server_default="0")


class MailingRollup(db.Model):
    """A mailing's figures, kept current as events are recorded (app/tracking/rollups.py).

    Unique counts are recipients whose delivery stamp is set (opens = deliveries.opened_at is
    not NULL, human_opens = human_opened_at is not NULL …); *_events count tracking_events
    rows, each the first time one recipient did one thing as a person or as a machine.
    Actions and unsubscribes are forms a person submits, so they have no machine share.
    """

    __tablename__ = "mailing_rollups"

    mailing_id: Mapped[int] = mapped_column(
        ForeignKey("mailings.id", ondelete="CASCADE"), primary_key=True
    )
    opens: Mapped[int] = _counter()
    human_opens: Mapped[int] = _counter()
    clicks: Mapped[int] = _counter()
    human_clicks: Mapped[int] = _counter()
    actions: Mapped[int] = _counter()
    unsubscribes: Mapped[int] = _counter()
    open_events: Mapped[int] = _counter()
    human_open_events: Mapped[int] = _counter()
    click_events: Mapped[int] = _counter()
    human_click_events: Mapped[int] = _counter()


class MailingHourlyRollup(db.Model):
    """Per mailing and UTC hour: recipients doing each thing for the first time then, and events."""

    __tablename__ = "mailing_hourly_rollups"

    mailing_id: Mapped[int] = mapped_column(
        ForeignKey("mailings.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    opens: Mapped[int] = _counter()
    human_opens: Mapped[int] = _counter()
    clicks: Mapped[int] = _counter()
    human_clicks: Mapped[int] = _counter()
    actions: Mapped[int] = _counter()
    unsubscribes: Mapped[int] = _counter()
    open_events: Mapped[int] = _counter()
    human_open_events: Mapped[int] = _counter()
    click_events: Mapped[int] = _counter()
    human_click_events: Mapped[int] = _counter()


class LinkRollup(db.Model):
    """Per link of a mailing (by position): recipients who clicked it, and click events."""

    __tablename__ = "link_rollups"

    mailing_id: Mapped[int] = mapped_column(
        ForeignKey("mailings.id", ondelete="CASCADE"), primary_key=True
    )
    link_position: Mapped[int] = mapped_column(primary_key=True)
    clicks: Mapped[int] = _counter()
    human_clicks: Mapped[int] = _counter()
    click_events: Mapped[int] = _counter()
    human_click_events: Mapped[int] = _counter()


class LinkFirstClick(db.Model):
    """The first time one recipient clicked one link, and the first time as a person.

    What makes link_rollups' unique clickers exact: a recipient may click a link as a person
    and be scanned as a machine too, and counts once.
    """

    __tablename__ = "link_first_clicks"

    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), primary_key=True
    )
    link_position: Mapped[int] = mapped_column(primary_key=True)
    mailing_id: Mapped[int] = mapped_column(ForeignKey("mailings.id", ondelete="CASCADE"))
    clicked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    human_clicked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
