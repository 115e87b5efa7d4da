"""What happens to a delivery that was not simply accepted: retry, failure, hard bounce,
and pausing a mailing whose failure rate says something is wrong."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from redis.exceptions import RedisError
from sqlalchemy import exists, func, select, update

from app.config import Settings
from app.db import utcnow
from app.extensions import db
from app.mailings.feedback.bounces import record_bounce
from app.mailings.models import (
    BounceKind,
    Delivery,
    DeliveryStatus,
    Mailing,
    MailingStatus,
)
from app.queues import redis_connection, redis_key
from mailers.transport import DeliveryError

log = logging.getLogger(__name__)

MIN_ATTEMPTS_FOR_ERROR_RATE = 50
# A delivery in one of these may still change; the others are where a delivery ends.
# Held rows (an A/B test's rest of the audience) are unsettled too: they wait for the winner.
UNSETTLED_STATUSES = (
    DeliveryStatus.QUEUED,
    DeliveryStatus.SENDING,
    DeliveryStatus.DEFERRED,
    DeliveryStatus.HELD,
)
FINISHED_STATUSES = (MailingStatus.SENT, MailingStatus.CANCELLED)


@dataclass
class BatchResult:
    claimed: int = 0
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    suppressed: int = 0
    released: int = 0
    stopped_because: str | None = None
    errors: list[str] = field(default_factory=list)


def defer(ids: list[int], exc: DeliveryError, settings: Settings, result: BatchResult) -> None:
    """Retry later with exponential backoff, or fail once the attempts are used up."""
    rows = db.session.execute(
        select(Delivery.id, Delivery.attempts).where(Delivery.id.in_(ids))
    ).all()
    now = utcnow()
    for delivery_id, attempts in rows:
        if attempts >= settings.max_send_attempts:
            values = {"status": DeliveryStatus.FAILED, "next_attempt_at": None}
            result.failed += 1
        else:
            backoff = settings.retry_base_seconds * 2 ** (attempts - 1)
            values = {
                "status": DeliveryStatus.DEFERRED,
                "next_attempt_at": now + timedelta(seconds=backoff),
            }
            result.deferred += 1
        db.session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id)
            .values(lease_until=None, last_error=str(exc)[:1000], **values)
            .execution_options(synchronize_session=False)
        )
    db.session.commit()


def fail_permanently(
    delivery_id: int, exc: Exception, settings: Settings, result: BatchResult
) -> None:
    """A 5xx reply is a hard bounce: fail the row and never mail this address again."""
    db.session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id)
        .values(status=DeliveryStatus.FAILED, lease_until=None, last_error=str(exc)[:1000])
        .execution_options(synchronize_session=False)
    )
    record_bounce(
        kind=BounceKind.HARD,
        source="smtp",
        delivery_id=delivery_id,
        detail=str(exc),
        soft_bounce_limit=settings.soft_bounce_limit,
    )
    db.session.commit()
    result.failed += 1


def fail_unbuildable(delivery_id: int, exc: Exception, result: BatchResult) -> None:
    """No message can be built for this row (say, an address SMTP cannot carry): fail it alone."""
    db.session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id)
        .values(
            status=DeliveryStatus.FAILED,
            lease_until=None,
            last_error=f"could not build the message: {exc}"[:1000],
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    result.failed += 1


def count_outcomes(settings: Settings, mailing_id: int, result: BatchResult) -> None:
    """Pause a mailing whose failure rate passes the threshold, and say why."""
    attempted = result.sent + result.failed + result.deferred
    if not attempted:
        return
    redis = redis_connection(settings.redis_url)
    key = redis_key(settings, "mailing", mailing_id, "outcomes")
    try:
        with redis.pipeline() as pipe:
            pipe.hincrby(key, "attempted", attempted)
            pipe.hincrby(key, "failed", result.failed + result.deferred)
            pipe.expire(key, 30 * 24 * 3600)
            total, failed, _ = pipe.execute()
    except RedisError as exc:
        # The counters only feed the automatic pause; the deliveries are already recorded.
        log.warning("mailing %s: outcome counters unavailable (%s)", mailing_id, exc)
        return
    if total >= MIN_ATTEMPTS_FOR_ERROR_RATE and failed / total > settings.error_pause_threshold:
        reason = (
            f"Paused automatically: {failed} of {total} attempts failed "
            f"({failed / total:.0%}, above {settings.error_pause_threshold:.0%}). "
            "Check the SMTP server and the failed deliveries, then resume."
        )
        paused = db.session.execute(
            update(Mailing)
            .where(Mailing.id == mailing_id, Mailing.status == MailingStatus.SENDING)
            .values(status=MailingStatus.PAUSED, status_reason=reason)
            .execution_options(synchronize_session=False)
        ).rowcount
        if paused:
            log.warning("mailing %s: %s", mailing_id, reason)
        db.session.commit()


def settle_outcome_counts(mailing_id: int) -> dict[str, int] | None:
    """Store a finished mailing's deliveries counted by status; None while any may change.

    Once a mailing is sent or cancelled and no delivery waits for a worker, no status moves
    again (bounces reported later are bounce_events, not status changes), so the counts are
    written once to mailings.outcome_counts and reports read them instead of a GROUP BY over
    every delivery. No commit.
    """
    unsettled = exists().where(
        Delivery.mailing_id == mailing_id, Delivery.status.in_(UNSETTLED_STATUSES)
    )
    finished = db.session.scalar(
        select(Mailing.id).where(
            Mailing.id == mailing_id, Mailing.status.in_(FINISHED_STATUSES), ~unsettled
        )
    )
    if finished is None:
        return None
    counts = count_by_status([mailing_id])[mailing_id]
    db.session.execute(
        update(Mailing)
        .where(Mailing.id == mailing_id)
        # Not an edit of the mailing: updated_at stays what staff last did.
        .values(outcome_counts=counts, updated_at=Mailing.updated_at)
        .execution_options(synchronize_session=False)
    )
    return counts


def count_by_status(mailing_ids: list[int]) -> dict[int, dict[str, int]]:
    """Return {mailing_id: {status: deliveries, …, "total": n}} from the (mailing, status) index."""
    counts = {m: dict.fromkeys((s.value for s in DeliveryStatus), 0) for m in mailing_ids}
    if mailing_ids:
        for mailing_id, status, count in db.session.execute(
            select(Delivery.mailing_id, Delivery.status, func.count())
            .where(Delivery.mailing_id.in_(mailing_ids))
            .group_by(Delivery.mailing_id, Delivery.status)
        ):
            counts[mailing_id][DeliveryStatus(status).value] = count
    for by_status in counts.values():
        by_status["total"] = sum(by_status.values())
    return counts
