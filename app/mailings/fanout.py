"""Put batch jobs on the queue, and the clock's sweep that makes the database the source of truth.

Redis can lose jobs (a restart without persistence) and RQ leaves a SIGKILLed worker's job
"started" for minutes. So the sweep looks at deliveries, not at RQ: any batch with rows that
are queued, due for retry, or leased by a worker whose lease ran out gets a job again. Batch
jobs are idempotent (they claim rows atomically and skip rows already sent), so an extra job
costs one query.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import or_, select

from app.config import Settings
from app.db import utcnow
from app.extensions import db
from app.mailings.models import Delivery, DeliveryStatus, Mailing, MailingStatus
from app.queues import QueueName, get_queue, redis_connection

log = logging.getLogger(__name__)

LIVE_JOB_STATUSES = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED, JobStatus.STARTED}


def batch_job_timeout(settings: Settings, send_rate: float | None) -> int:
    # Long enough for a whole batch at the mailing's rate, short enough that a stuck job ends.
    seconds_per_batch = settings.batch_size / (send_rate or 200)
    return int(seconds_per_batch * 3) + 60


def _jobs_key(settings: Settings, mailing_id: int) -> str:
    return f"{settings.queue_prefix}:mailing:{mailing_id}:batch-jobs"


def enqueue_batches(
    settings: Settings,
    mailing_id: int,
    batch_nos: Iterable[int],
    *,
    generation: int | str,
    send_rate: float | None = None,
) -> int:
    """Enqueue one send job per batch number, in one Redis round trip per 500 jobs."""
    queue = get_queue(settings, QueueName.SEND)
    connection = redis_connection(settings.redis_url)
    timeout = batch_job_timeout(settings, send_rate)
    batch_nos = list(batch_nos)
    for start in range(0, len(batch_nos), 500):
        chunk = batch_nos[start : start + 500]
        jobs = [
            Queue.prepare_data(
                "workers.jobs.send_batch",
                args=(mailing_id, batch_no),
                job_id=f"send-{mailing_id}-{batch_no}-{generation}",
                timeout=timeout,
                result_ttl=600,
                failure_ttl=7 * 24 * 3600,
                retry=Retry(max=3, interval=[5, 30, 120]),
            )
            for batch_no in chunk
        ]
        with connection.pipeline() as pipe:
            queue.enqueue_many(jobs, pipeline=pipe)
            pipe.hset(
                _jobs_key(settings, mailing_id),
                mapping={str(b): f"send-{mailing_id}-{b}-{generation}" for b in chunk},
            )
            pipe.expire(_jobs_key(settings, mailing_id), 30 * 24 * 3600)
            pipe.execute()
    return len(batch_nos)


def _batches_needing_work(mailing_id: int) -> tuple[set[int], set[int]]:
    """Return (batches with queued or due rows, batches holding expired leases)."""
    now = utcnow()
    rows = db.session.execute(
        select(Delivery.batch_no, Delivery.status)
        .where(
            Delivery.mailing_id == mailing_id,
            or_(
                Delivery.status == DeliveryStatus.QUEUED,
                (Delivery.status == DeliveryStatus.DEFERRED) & (Delivery.next_attempt_at <= now),
                (Delivery.status == DeliveryStatus.SENDING) & (Delivery.lease_until < now),
            ),
        )
        .distinct()
    ).all()
    pending = {b for b, s in rows if s != DeliveryStatus.SENDING}
    expired = {b for b, s in rows if s == DeliveryStatus.SENDING}
    return pending, expired


def _job_is_live(settings: Settings, job_id: str | None, *, lease_expired: bool) -> bool:
    if not job_id:
        return False
    connection = redis_connection(settings.redis_url)
    try:
        job = Job.fetch(job_id, connection=connection)
    except NoSuchJobError:
        return False
    status = job.get_status(refresh=False)
    if status not in LIVE_JOB_STATUSES:
        return False
    if status == JobStatus.STARTED and lease_expired:
        return False  # the job stopped renewing its lease: its worker is gone
    if status == JobStatus.STARTED and job.started_at is not None:
        # A job that started long ago and still has unclaimed rows died before claiming them.
        age = (utcnow() - job.started_at.replace(tzinfo=utcnow().tzinfo)).total_seconds()
        return age < settings.lease_seconds
    return True


def requeue_stalled_batches(settings: Settings, mailing: Mailing) -> int:
    """Enqueue jobs for every batch of a sending mailing whose work nobody is doing."""
    pending, expired = _batches_needing_work(mailing.id)
    if not pending and not expired:
        return 0
    recorded = {
        int(k): v.decode()
        for k, v in redis_connection(settings.redis_url)
        .hgetall(_jobs_key(settings, mailing.id))
        .items()
    }
    stalled = {
        b
        for b in pending | expired
        if not _job_is_live(settings, recorded.get(b), lease_expired=b in expired)
    }
    if stalled:
        log.info("mailing %s: re-enqueueing %d stalled batches", mailing.id, len(stalled))
        enqueue_batches(
            settings,
            mailing.id,
            sorted(stalled),
            generation=f"s{time.time_ns()}",
            send_rate=mailing.send_rate,
        )
    return len(stalled)


def sweep(settings: Settings) -> dict:
    """Start due scheduled mailings, revive stalled batches and finish completed mailings."""
    from app.campaigns.services import close_expired
    from app.mailings.launch import start_mailing
    from app.mailings.sending import finish_if_complete
    from app.tracking.buffer import drain_events

    started = 0
    due = db.session.scalars(
        select(Mailing.id).where(
            Mailing.status == MailingStatus.SCHEDULED, Mailing.scheduled_at <= utcnow()
        )
    ).all()
    for mailing_id in due:
        started += start_mailing(mailing_id, settings)
    requeued = finished = 0
    for mailing in db.session.scalars(
        select(Mailing).where(Mailing.status == MailingStatus.SENDING)
    ).all():
        requeued += requeue_stalled_batches(settings, mailing)
        finished += finish_if_complete(mailing.id)
    closed = close_expired()
    db.session.commit()
    return {
        "started": started,
        "requeued": requeued,
        "finished": finished,
        "closed": closed,
        "events": drain_events(settings),  # opens and clicks buffered in Redis
    }
