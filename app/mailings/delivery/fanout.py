"""Put batch jobs on the queue, and find the batches that need a job again.

Redis can lose jobs (a restart without persistence) and RQ leaves a SIGKILLed worker's job
"started" for minutes. So requeue_stalled_batches (run by the clock's sweep in
app/mailings/delivery/ticks.py) looks at deliveries, not at RQ: any batch with rows that
are queued, due for retry, or leased by a worker whose lease ran out gets a job again. Batch
jobs are idempotent (they claim rows atomically and skip rows already sent), so an extra job
costs one query.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import utcnow
from app.extensions import db
from app.jobs import SEND_BATCH, prepared, queue_of
from app.mailings.models import (
    Delivery,
    DeliveryStatus,
    Mailing,
    due_for_sending,
)
from app.queues import (
    call_after_commit,
    dequeued_unstarted,
    job_is_live,
    redis_connection,
    redis_key,
)

log = logging.getLogger(__name__)


def batch_job_timeout(settings: Settings, send_rate: float | None) -> int:
    # Long enough for a whole batch at the mailing's rate, short enough that a stuck job ends.
    seconds_per_batch = settings.batch_size / (send_rate or 200)
    return int(seconds_per_batch * 3) + 60


def _jobs_key(settings: Settings, mailing_id: int) -> str:
    return redis_key(settings, "mailing", mailing_id, "batch-jobs")


def enqueue_send_batches(
    settings: Settings,
    mailing: Mailing,
    batch_nos: Iterable[int],
    *,
    generation: int | str,
    after_commit_of: Session | None = None,
) -> int:
    """Enqueue one send job per batch of `mailing`: the only way a send batch is queued.

    Start, the sweep and resume all come here, so every batch job gets the same options:
    SEND_BATCH's id scheme, TTLs and retries (app/jobs.py) and a timeout that fits the
    mailing's own `send_rate` (a slow mailing's batch runs for minutes). With `after_commit_of`
    the jobs go to Redis once that session commits (what they need must be visible first).
    """
    # Read now: after a commit the row is expired and may not be loaded from a commit hook.
    mailing_id, send_rate, batch_nos = mailing.id, mailing.send_rate, sorted(set(batch_nos))

    def push() -> int:
        return _push_batch_jobs(settings, mailing_id, send_rate, batch_nos, generation)

    if after_commit_of is not None:
        call_after_commit(after_commit_of, push)
        return len(batch_nos)
    return push()


def _push_batch_jobs(
    settings: Settings,
    mailing_id: int,
    send_rate: float | None,
    batch_nos: list[int],
    generation: int | str,
) -> int:
    """Put the jobs on the send queue, one Redis round trip per 500 jobs."""
    queue = queue_of(SEND_BATCH, settings)
    connection = redis_connection(settings.redis_url)
    timeout = batch_job_timeout(settings, send_rate)
    for start in range(0, len(batch_nos), 500):
        chunk = batch_nos[start : start + 500]
        job_ids = {b: SEND_BATCH.job_id(mailing_id, b, generation) for b in chunk}
        jobs = [
            prepared(SEND_BATCH, mailing_id, batch_no, job_id=job_ids[batch_no], timeout=timeout)
            for batch_no in chunk
        ]
        with connection.pipeline() as pipe:
            queue.enqueue_many(jobs, pipeline=pipe)
            # The sweep reads which job each batch has, to tell a live job from a lost one.
            pipe.hset(
                _jobs_key(settings, mailing_id), mapping={str(b): j for b, j in job_ids.items()}
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
            due_for_sending(now),
        )
        .distinct()
    ).all()
    pending = {b for b, s in rows if s != DeliveryStatus.SENDING}
    expired = {b for b, s in rows if s == DeliveryStatus.SENDING}
    return pending, expired


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
    # The start's own fan-out writes the jobs of a big mailing for a few seconds after its
    # snapshot: a batch with no job recorded yet is not stalled until a lease has passed since
    # the start (the 1M-recipient bench saw the sweep re-enqueue thousands of batches in that
    # window). A batch whose recorded job died is re-enqueued at once, young mailing or not.
    fanning_out = mailing.started_at is not None and utcnow() - mailing.started_at < timedelta(
        seconds=settings.lease_seconds
    )
    # A job whose worker died between taking it and starting it is neither waiting nor
    # started; without this the batch would wait for RQ's own clean-up, a minute or two.
    unstarted = dequeued_unstarted(settings, SEND_BATCH.queue)
    stalled = {
        b
        for b in pending | expired
        if not (fanning_out and b in pending and b not in recorded)
        and not job_is_live(
            settings,
            recorded.get(b),
            # A job whose lease ran out stopped renewing it: its worker is gone.
            stale_after=0 if b in expired else settings.lease_seconds,
            unstarted=unstarted,
        )
    }
    if stalled:
        log.info("mailing %s: re-enqueueing %d stalled batches", mailing.id, len(stalled))
        enqueue_send_batches(settings, mailing, stalled, generation=f"s{time.time_ns()}")
    return len(stalled)
