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
    text,
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
    # An A/B test (app/mailings/abtest/): its settings, and the 2-5 variants it sends.
    ab_test: Mapped[AbTest | None] = relationship(
        back_populates="mailing", cascade="all, delete-orphan", uselist=False
    )
    variants: Mapped[list[MailingVariant]] = relationship(
        back_populates="mailing",
        cascade="all, delete-orphan",
        order_by="MailingVariant.position",
        foreign_keys="MailingVariant.mailing_id",
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
    # The A/B variant whose own body holds the link; None: the mailing's body (every variant
    # that does not change the body shares its links).
    variant_id: Mapped[int | None] = mapped_column(
        ForeignKey("mailing_variants.id", ondelete="CASCADE")
    )

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
    HELD = "held"  # the rest of an A/B test's audience, waiting for the winner


class Delivery(db.Model):
    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No foreign keys to the mailing or the supporter: checking them on every row was most of
    # the audience snapshot's time, and locked every recipient's supporter row. Triggers keep
    # what the keys did on delete (migration 0018): a deleted mailing takes its deliveries.
    mailing_id: Mapped[int] = mapped_column(BigId)
    # Erasing a supporter keeps the row (and so the mailing's counts) but forgets who it was:
    # a trigger sets this NULL.
    supporter_id: Mapped[int | None] = mapped_column(BigId)
    batch_no: Mapped[int] = mapped_column()
    # In an A/B test, the variant this recipient was sent as part of the test portion; None for
    # everyone else (the rest of the audience gets the winner, app/mailings/abtest/).
    variant_id: Mapped[int | None] = mapped_column(
        ForeignKey("mailing_variants.id", ondelete="SET NULL")
    )
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
        # The per-variant figures read only the test portion's rows.
        Index(
            "ix_deliveries_mailing_variant",
            "mailing_id",
            "variant_id",
            postgresql_where=text("variant_id IS NOT NULL"),
            sqlite_where=text("variant_id IS NOT NULL"),
        ),
    )


class AbMetric(enum.StrEnum):
    """What an A/B test's winner is judged by: recipients who did it, people only."""

    OPENS = "opens"
    CLICKS = "clicks"
    ACTIONS = "actions"


class AbSelection(enum.StrEnum):
    AUTO = "auto"  # the winner goes to the rest of the audience when the wait is over
    MANUAL = "manual"  # staff pick the winner; the rest waits until they do


VARIANT_LABELS = "ABCDE"
MIN_VARIANTS, MAX_VARIANTS = 2, len(VARIANT_LABELS)
# What a variant may change; None keeps the mailing's own.
VARIANT_FIELDS = ("subject", "from_name", "preheader", "body_mjml", "body_text")


class AbTest(db.Model):
    """A mailing's A/B test: how much of the audience tests, for how long, judged by what."""

    __tablename__ = "ab_tests"

    mailing_id: Mapped[int] = mapped_column(
        ForeignKey("mailings.id", ondelete="CASCADE"), primary_key=True
    )
    test_fraction: Mapped[float] = mapped_column(Float)  # of the audience, split evenly
    wait_minutes: Mapped[int] = mapped_column()  # from the start of the send to the decision
    metric: Mapped[str] = mapped_column(String(20), default=AbMetric.CLICKS.value)
    selection: Mapped[str] = mapped_column(String(20), default=AbSelection.AUTO.value)
    # An automatic pick below this probability to be best waits for staff instead.
    min_confidence: Mapped[float | None] = mapped_column(Float)
    # The circuit breaker: a variant whose rate passes one of these (once it has been sent to
    # breaker_min_sent recipients) stops; its unsent test recipients get the winner instead.
    max_unsubscribe_rate: Mapped[float | None] = mapped_column(Float)
    max_complaint_rate: Mapped[float | None] = mapped_column(Float)
    breaker_min_sent: Mapped[int] = mapped_column(default=100)

    # Written when the send starts.
    test_recipients: Mapped[int] = mapped_column(default=0)
    test_batch_count: Mapped[int] = mapped_column(default=0)
    decide_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Written once, when the winner is picked (by the clock or by staff).
    winner_variant_id: Mapped[int | None] = mapped_column(
        ForeignKey("mailing_variants.id", ondelete="SET NULL")
    )
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    confidence: Mapped[float | None] = mapped_column(Float)
    # The figures the decision was made on, as they were then.
    decision: Mapped[dict | None] = mapped_column(JsonDict)
    # Why the test waits (e.g. for staff to pick), shown on the mailing's page.
    note: Mapped[str | None] = mapped_column(Text)
    # {"<variant id>": {"recipients": n, "sent": n}}: the test portion's deliveries counted once
    # none of them can change status any more (app/mailings/abtest/results.py), so a report
    # of a finished test does not count them again. NULL while the test portion sends.
    variant_outcomes: Mapped[dict | None] = mapped_column(JsonDict)

    mailing: Mapped[Mailing] = relationship(back_populates="ab_test")
    winner: Mapped[MailingVariant | None] = relationship(foreign_keys=[winner_variant_id])

    @property
    def is_decided(self) -> bool:
        return self.decided_at is not None


class MailingVariant(db.Model):
    """One version of an A/B-tested mailing; each field left None is the mailing's own."""

    __tablename__ = "mailing_variants"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    mailing_id: Mapped[int] = mapped_column(ForeignKey("mailings.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column()  # 0-4, shown as A-E
    subject: Mapped[str | None] = mapped_column(String(998))
    from_name: Mapped[str | None] = mapped_column(String(200))
    preheader: Mapped[str | None] = mapped_column(String(300))
    body_mjml: Mapped[str | None] = mapped_column(Text)
    body_text: Mapped[str | None] = mapped_column(Text)
    # Frozen with the mailing; None where the variant renders as the mailing does.
    frozen_subject: Mapped[str | None] = mapped_column(Text)
    frozen_html: Mapped[str | None] = mapped_column(Text)
    frozen_text: Mapped[str | None] = mapped_column(Text)
    stopped_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    stopped_reason: Mapped[str | None] = mapped_column(Text)

    mailing: Mapped[Mailing] = relationship(back_populates="variants", foreign_keys=[mailing_id])

    __table_args__ = (UniqueConstraint("mailing_id", "position"),)

    @property
    def label(self) -> str:
        return VARIANT_LABELS[self.position]


def _counter() -> Mapped[int]:
    return mapped_column(default=0, server_default="0")


class AbVariantRollup(db.Model):
    """Each A/B variant's unique counts, kept as events and bounces arrive.

    The stamps' counters are moved by app/tracking/rollups.py in the transaction that moves a
    test recipient's first-time stamp (the same deltas as mailing_rollups); complaints and hard
    bounces by app/mailings/feedback/bounces.py for a recipient's first one of each.
    `clarion stats rebuild` recomputes them. Per-variant figures thus never count deliveries.
    """

    __tablename__ = "ab_variant_rollups"

    variant_id: Mapped[int] = mapped_column(
        ForeignKey("mailing_variants.id", ondelete="CASCADE"), primary_key=True
    )
    mailing_id: Mapped[int] = mapped_column(ForeignKey("mailings.id", ondelete="CASCADE"))
    opens: Mapped[int] = _counter()
    human_opens: Mapped[int] = _counter()
    clicks: Mapped[int] = _counter()
    human_clicks: Mapped[int] = _counter()
    actions: Mapped[int] = _counter()
    unsubscribes: Mapped[int] = _counter()
    complaints: Mapped[int] = _counter()
    hard_bounces: Mapped[int] = _counter()

    __table_args__ = (Index("ix_ab_variant_rollups_mailing", "mailing_id"),)


VARIANT_COUNTERS = (
    "opens",
    "human_opens",
    "clicks",
    "human_clicks",
    "actions",
    "unsubscribes",
    "complaints",
    "hard_bounces",
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
