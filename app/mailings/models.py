"""Mailings, their tracked links and one delivery row per (mailing, supporter)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    Enum,
    Float,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    or_,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import BigId, JsonDict, UtcDateTime, utcnow
from app.extensions import db


def _enum(cls, name):
    return Enum(cls, name=name, values_callable=lambda members: [m.value for m in members])


class MailingStatus(enum.StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    SENT = "sent"
    CANCELLED = "cancelled"


# Once a mailing leaves draft its frozen body and audience snapshot are what gets sent.
EDITABLE_STATUSES = (MailingStatus.DRAFT,)


class Mailing(db.Model):
    __tablename__ = "mailings"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(998))
    preheader: Mapped[str | None] = mapped_column(String(300))
    from_name: Mapped[str | None] = mapped_column(String(200))
    from_email: Mapped[str | None] = mapped_column(String(320))
    reply_to: Mapped[str | None] = mapped_column(String(320))
    layout: Mapped[str | None] = mapped_column(String(100))
    body_mjml: Mapped[str | None] = mapped_column(Text)
    body_text: Mapped[str | None] = mapped_column(Text)
    campaign_id: Mapped[int | None] = mapped_column(BigId)
    # {"include_lists": [...], "exclude_lists": [...], "include_tags": [...],
    #  "exclude_tags": [...], "segments": [...]} — ids, resolved when the audience is snapshotted.
    audience: Mapped[dict] = mapped_column(JsonDict, default=dict)
    send_rate: Mapped[float | None] = mapped_column(
        Float
    )  # messages/second; None = as fast as allowed
    status: Mapped[MailingStatus] = mapped_column(
        _enum(MailingStatus, "mailing_status"), default=MailingStatus.DRAFT, index=True
    )
    status_reason: Mapped[str | None] = mapped_column(Text)
    scheduled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    # Written once by freeze(): the rendered, CSS-inlined HTML and text templates, still
    # holding merge fields and link placeholders, and the subject template.
    frozen_html: Mapped[str | None] = mapped_column(Text)
    frozen_text: Mapped[str | None] = mapped_column(Text)
    frozen_subject: Mapped[str | None] = mapped_column(Text)
    frozen_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    total_recipients: Mapped[int] = mapped_column(default=0)
    # {"sent": n, "failed": n, …}: the deliveries by status, written once no delivery can change
    # any more (delivery/outcomes.py settle_outcome_counts), so a finished mailing's report
    # does not count a million rows. NULL while sending.
    outcome_counts: Mapped[dict | None] = mapped_column(JsonDict)
    batch_count: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    links: Mapped[list[MailingLink]] = relationship(
        back_populates="mailing", cascade="all, delete-orphan", order_by="MailingLink.position"
    )

    @property
    def is_editable(self) -> bool:
        return self.status in EDITABLE_STATUSES


class MailingLink(db.Model):
    """A link in a frozen mailing; clicks redirect only to these URLs."""

    __tablename__ = "mailing_links"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    mailing_id: Mapped[int] = mapped_column(ForeignKey("mailings.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column()
    url: Mapped[str] = mapped_column(Text)
    is_honeypot: Mapped[bool] = mapped_column(default=False)

    mailing: Mapped[Mailing] = relationship(back_populates="links")

    __table_args__ = (UniqueConstraint("mailing_id", "position"),)


class DeliveryStatus(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"  # leased by a worker until lease_until
    SENT = "sent"
    DEFERRED = "deferred"  # a temporary failure; tried again at next_attempt_at
    FAILED = "failed"
    SUPPRESSED = "suppressed"  # opted out or bounced after the snapshot, before its batch
    CANCELLED = "cancelled"


class Delivery(db.Model):
    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    mailing_id: Mapped[int] = mapped_column(ForeignKey("mailings.id", ondelete="CASCADE"))
    # Erasing a supporter keeps the row (and so the mailing's counts) but forgets who it was.
    supporter_id: Mapped[int | None] = mapped_column(
        ForeignKey("supporters.id", ondelete="SET NULL")
    )
    batch_no: Mapped[int] = mapped_column()
    # Server defaults let the audience snapshot INSERT … SELECT only ids and batch numbers.
    status: Mapped[DeliveryStatus] = mapped_column(
        _enum(DeliveryStatus, "delivery_status"),
        default=DeliveryStatus.QUEUED,
        server_default=DeliveryStatus.QUEUED.value,
    )
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    message_id: Mapped[str | None] = mapped_column(String(300))
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The first time the recipient did each thing (app/tracking/rollups.py keeps them): the
    # mailing's unique counts move only when one of these goes from NULL to a time, or back
    # when a re-judged scanner takes a "human" one away. Never read per request.
    opened_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    human_opened_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    clicked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    human_clicked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    acted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        UniqueConstraint("mailing_id", "supporter_id"),
        # Serves the batch claim (mailing, status, batch) and "anything left to send?".
        Index("ix_deliveries_mailing_status_batch", "mailing_id", "status", "batch_no"),
        Index("ix_deliveries_message_id", "message_id"),
        Index("ix_deliveries_supporter_id", "supporter_id"),
    )


def due_for_sending(now: datetime) -> ColumnElement[bool]:
    """SQL: the delivery waits for a worker: queued, deferred until `now` or earlier, or leased
    to a worker whose lease ran out (it died mid-batch).

    The one rule the batch claim and the fan-out's search for unfinished batches share.
    """
    return or_(
        Delivery.status == DeliveryStatus.QUEUED,
        (Delivery.status == DeliveryStatus.DEFERRED) & (Delivery.next_attempt_at <= now),
        (Delivery.status == DeliveryStatus.SENDING) & (Delivery.lease_until < now),
    )


class BounceKind(enum.StrEnum):
    HARD = "hard"
    SOFT = "soft"
    COMPLAINT = "complaint"


class BounceEvent(db.Model):
    """A bounce or complaint reported by SMTP, a webhook or a DSN in a bounce mailbox."""

    __tablename__ = "bounce_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[BounceKind] = mapped_column(_enum(BounceKind, "bounce_kind"))
    source: Mapped[str] = mapped_column(String(40))  # smtp, ses, webhook, dsn
    mailing_id: Mapped[int | None] = mapped_column(ForeignKey("mailings.id", ondelete="SET NULL"))
    supporter_id: Mapped[int | None] = mapped_column(
        ForeignKey("supporters.id", ondelete="SET NULL"), index=True
    )
    delivery_id: Mapped[int | None] = mapped_column(
        ForeignKey("deliveries.id", ondelete="SET NULL")
    )
    detail: Mapped[str | None] = mapped_column(Text)
    external_id: Mapped[str | None] = mapped_column(String(300), unique=True)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    payload: Mapped[dict | None] = mapped_column(JsonDict)

    # A mailing's report counts bounced and complaining recipients from this index alone.
    __table_args__ = (
        Index("ix_bounce_events_mailing_kind_delivery", "mailing_id", "kind", "delivery_id"),
    )
