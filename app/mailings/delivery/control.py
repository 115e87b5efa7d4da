"""Pause, resume and cancel a mailing, and report its live progress."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update

from app.auth import audit
from app.config import Settings
from app.db import utcnow
from app.errors import Conflict
from app.extensions import db
from app.mailings.delivery.fanout import enqueue_send_batches
from app.mailings.delivery.launch import check_campaign_open
from app.mailings.models import Delivery, DeliveryStatus, Mailing, MailingStatus


class ControlError(Conflict, ValueError):
    """The mailing is not in a state that allows this."""


def record(actor: str, action: str, mailing: Mailing, detail: str = "") -> None:
    """The audit entry for a change made to a mailing, by whichever edge made it."""
    audit.record(actor, action, subject_type="mailing", subject_id=mailing.id, detail=detail)


def pause(mailing: Mailing, *, actor: str, reason: str | None = None) -> None:
    """Stop sending; workers finish the message in hand and hand back the rest of their batch."""
    if mailing.status not in (MailingStatus.SENDING, MailingStatus.SCHEDULED):
        raise ControlError(f"A {mailing.status.value} mailing cannot be paused.")
    mailing.status = MailingStatus.PAUSED
    mailing.status_reason = reason or f"Paused by {actor}."
    record(actor, "mailing_paused", mailing)


def resume(mailing: Mailing, settings: Settings, *, actor: str) -> None:
    """Continue a paused mailing from where it stopped."""
    if mailing.status != MailingStatus.PAUSED:
        raise ControlError(
            f"Only a paused mailing can be resumed; this one is {mailing.status.value}."
        )
    # Resuming into a closed campaign would send dead "Act now" links (CampaignNotOpen).
    check_campaign_open(mailing)
    record(actor, "mailing_resumed", mailing)
    if mailing.started_at is None:  # paused before it started: back to its schedule
        mailing.status = MailingStatus.SCHEDULED
        mailing.status_reason = f"Resumed by {actor}."
        return
    mailing.status = MailingStatus.SENDING
    mailing.status_reason = f"Resumed by {actor}."
    # Deferred rows keep their backoff; queued rows get a job right after the commit.
    batch_nos = db.session.scalars(
        select(Delivery.batch_no)
        .where(Delivery.mailing_id == mailing.id, Delivery.status == DeliveryStatus.QUEUED)
        .distinct()
    ).all()
    enqueue_send_batches(
        settings, mailing, batch_nos, generation=f"r{utcnow():%s%f}", after_commit_of=db.session
    )


def cancel(mailing: Mailing, *, actor: str) -> None:
    """Stop for good: every row not yet sent becomes cancelled."""
    if mailing.status not in (MailingStatus.SENDING, MailingStatus.SCHEDULED, MailingStatus.PAUSED):
        raise ControlError(f"A {mailing.status.value} mailing cannot be cancelled.")
    mailing.status = MailingStatus.CANCELLED
    mailing.status_reason = f"Cancelled by {actor}."
    record(actor, "mailing_cancelled", mailing)
    mailing.finished_at = utcnow()
    # Rows a worker holds right now are cancelled by that worker when it sees the status.
    db.session.execute(
        update(Delivery)
        .where(
            Delivery.mailing_id == mailing.id,
            Delivery.status.in_(
                (DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED, DeliveryStatus.HELD)
            ),
        )
        .values(status=DeliveryStatus.CANCELLED, next_attempt_at=None)
        .execution_options(synchronize_session=False)
    )


@dataclass
class Progress:
    status: str
    reason: str | None
    total: int
    counts: dict[str, int]
    done: int
    rate_per_second: float | None
    eta_seconds: float | None

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def progress(mailing: Mailing) -> Progress:
    """Count deliveries by state and estimate the rate and time left."""
    counts = {status.value: 0 for status in DeliveryStatus}
    counts.update(
        {
            status.value: n
            for status, n in db.session.execute(
                select(Delivery.status, func.count())
                .where(Delivery.mailing_id == mailing.id)
                .group_by(Delivery.status)
            ).all()
        }
    )
    done = sum(counts[s] for s in ("sent", "failed", "suppressed", "cancelled"))
    rate = eta = None
    if mailing.started_at and counts["sent"]:
        end = mailing.finished_at or utcnow()
        elapsed = max((end - mailing.started_at).total_seconds(), 0.001)
        rate = counts["sent"] / elapsed
        left = mailing.total_recipients - done
        eta = left / rate if mailing.status == MailingStatus.SENDING and rate else None
    return Progress(
        status=mailing.status.value,
        reason=mailing.status_reason,
        total=mailing.total_recipients,
        counts=counts,
        done=done,
        rate_per_second=round(rate, 1) if rate else None,
        eta_seconds=round(eta, 1) if eta is not None else None,
    )
