"""Campaigns: what supporters are asked to do, whom they write to, and what they did."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Index, String, Text, UniqueConstraint, and_
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import BigId, UtcDateTime, utcnow
from app.extensions import db


def _enum(cls, name):
    return Enum(
        cls,
        name=name,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class CampaignKind(enum.StrEnum):
    LETTER = "letter"  # supporters send a (model) letter to each target
    PETITION = "petition"  # supporters add their name
    CLICK = "click"  # supporters are sent on to an external page (after a POST we count)


class CampaignStatus(enum.StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    CLOSED = "closed"


class LetterStatus(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"
    HELD = "held"  # the target has no email address: printed and posted by staff


class Campaign(db.Model):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    reference: Mapped[str | None] = mapped_column(String(100))  # e.g. "UA 034/25"
    summary: Mapped[str | None] = mapped_column(Text)  # limited HTML, sanitised on display
    kind: Mapped[CampaignKind] = mapped_column(_enum(CampaignKind, "campaign_kind"))
    external_url: Mapped[str | None] = mapped_column(Text)  # where a click campaign sends people
    deadline: Mapped[datetime | None] = mapped_column(UtcDateTime)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")  # how the deadline reads
    thank_you: Mapped[str | None] = mapped_column(Text)  # limited HTML, sanitised on display
    letter_subject: Mapped[str | None] = mapped_column(String(998))
    letter_body: Mapped[str | None] = mapped_column(Text)  # {salutation} {supporter_name} …
    status: Mapped[CampaignStatus] = mapped_column(
        _enum(CampaignStatus, "campaign_status"), default=CampaignStatus.DRAFT
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    targets: Mapped[list[CampaignTarget]] = relationship(
        back_populates="campaign",
        cascade="all, delete-orphan",
        order_by="(CampaignTarget.position, CampaignTarget.id)",
    )

    def is_open(self, now: datetime | None = None) -> bool:
        """Open for actions: status open and the deadline (if any) not yet passed."""
        if self.status != CampaignStatus.OPEN:
            return False
        return self.deadline is None or (now or utcnow()) < self.deadline


class CampaignTarget(db.Model):
    """Someone supporters write to: an official with a salutation and an address."""

    __tablename__ = "campaign_targets"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(300))
    title: Mapped[str | None] = mapped_column(String(300))
    organisation: Mapped[str | None] = mapped_column(String(300))
    salutation: Mapped[str] = mapped_column(String(300))  # "Dear Acting Director Lyons"
    email: Mapped[str | None] = mapped_column(String(320))
    postal_address: Mapped[str | None] = mapped_column(Text)
    position: Mapped[int] = mapped_column(default=0)

    campaign: Mapped[Campaign] = relationship(back_populates="targets")


class Action(db.Model):
    """One supporter acting on one campaign, once: the letter as they finally sent it."""

    __tablename__ = "campaign_actions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    # Erasure forgets the person but keeps the count (NULLs never clash in the unique key).
    supporter_id: Mapped[int | None] = mapped_column(
        ForeignKey("supporters.id", ondelete="SET NULL"), index=True
    )
    mailing_id: Mapped[int | None] = mapped_column(ForeignKey("mailings.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(40), default="email")  # email, not_me, public
    letter_subject: Mapped[str | None] = mapped_column(String(998))
    letter_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    letters: Mapped[list[Letter]] = relationship(
        back_populates="action", cascade="all, delete-orphan", order_by="Letter.id"
    )

    __table_args__ = (
        UniqueConstraint("campaign_id", "supporter_id"),
        # Reports: letters per mailing (comparisons) and actions per day (campaign report).
        Index("ix_campaign_actions_mailing", "mailing_id"),
        Index("ix_campaign_actions_campaign_created", "campaign_id", "created_at"),
    )


class Letter(db.Model):
    """One supporter's letter to one target: sent by email, or held for the post."""

    __tablename__ = "campaign_letters"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    action_id: Mapped[int] = mapped_column(ForeignKey("campaign_actions.id", ondelete="CASCADE"))
    target_id: Mapped[int] = mapped_column(ForeignKey("campaign_targets.id", ondelete="CASCADE"))
    status: Mapped[LetterStatus] = mapped_column(
        _enum(LetterStatus, "letter_status"), default=LetterStatus.QUEUED
    )
    attempts: Mapped[int] = mapped_column(default=0)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # When a queued letter is next due (NULL: at once). The database, not RQ's scheduled
    # registry, holds it, so the clock can re-drive a letter whose job Redis lost.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    message_id: Mapped[str | None] = mapped_column(String(300))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    action: Mapped[Action] = relationship(back_populates="letters")
    target: Mapped[CampaignTarget] = relationship()

    __table_args__ = (
        UniqueConstraint("action_id", "target_id"),
        # The hourly cap counts one target's letters sent in the last hour.
        Index("ix_campaign_letters_target_sent", "target_id", "sent_at"),
        Index("ix_campaign_letters_due", "status", "next_attempt_at"),
    )


class PendingAction(db.Model):
    """An action typed on a public form, held until the address's owner confirms it.

    Nothing is attributed to the address (no supporter row, no action, no letter) before the
    confirmation link mailed to it is used: anyone can type anyone's address.
    """

    __tablename__ = "campaign_pending_actions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    # The mailing whose "Not Jane?" link the form came from, if any.
    mailing_id: Mapped[int | None] = mapped_column(ForeignKey("mailings.id", ondelete="SET NULL"))
    email: Mapped[str] = mapped_column(String(320), index=True)  # normalised
    name: Mapped[str] = mapped_column(String(200))
    town: Mapped[str] = mapped_column(String(200), default="")
    letter_body: Mapped[str | None] = mapped_column(Text)  # None: the model letter, as shown
    channel: Mapped[str] = mapped_column(String(40))  # the action's channel: public, not_me
    consent_channel: Mapped[str] = mapped_column(String(40))
    consent_detail: Mapped[str] = mapped_column(String(300))
    # A keyed hash of the client's network, never the address itself: enough to see bursts.
    client_hash: Mapped[str | None] = mapped_column(String(64))
    flagged_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    mail_sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    mail_message_id: Mapped[str | None] = mapped_column(String(300))
    # Set when the confirmation mail cannot go out: the server refused it for good, or RQ spent
    # its retries. The clock re-drives lost jobs only for rows without it; no public page shows it.
    mail_failed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    mail_error: Mapped[str | None] = mapped_column(Text)
    confirmed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    action_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaign_actions.id", ondelete="SET NULL")
    )

    __table_args__ = (
        # Burst checks count recent rows of one campaign and of one client network.
        Index("ix_campaign_pending_actions_campaign_created", "campaign_id", "created_at"),
        Index("ix_campaign_pending_actions_client_created", "client_hash", "created_at"),
    )


def confirmation_mail_owed():
    """Held rows still owed their confirmation mail: not sent, not given up on, not confirmed."""
    return and_(
        PendingAction.mail_sent_at.is_(None),
        PendingAction.mail_failed_at.is_(None),
        PendingAction.confirmed_at.is_(None),
    )


# The clock looks for rows owed their mail every few seconds: only those few rows are in this
# index, however many a week of public forms has held.
Index(
    "ix_campaign_pending_actions_mail_owed",
    PendingAction.created_at,
    postgresql_where=confirmation_mail_owed(),
    sqlite_where=confirmation_mail_owed(),
)
