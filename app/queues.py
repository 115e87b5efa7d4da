"""Redis connection and keys, Clarion's named RQ queues, and work deferred until the commit.

A job enqueued before the transaction that created its rows commits can run before those rows
are visible (or after they were rolled back), so services enqueue through app/jobs.py with
`after_commit_of=session` and the jobs are pushed to Redis by the session's after_commit hook.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from functools import cache

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import utcnow

log = logging.getLogger(__name__)


LIVE_JOB_STATUSES = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED, JobStatus.STARTED}


class QueueName(enum.StrEnum):
    SEND = "send"  # mailing batches: latency matters, keep it free of slow work
    IMPORTS = "imports"
    DEFAULT = "default"


@cache
def redis_connection(url: str, *, timeout: float | None = None) -> Redis:
    """A client for `url`; `timeout` also bounds each command (a check that must not hang)."""
    return Redis.from_url(
        url,
        health_check_interval=30,
        socket_connect_timeout=timeout or 5,
        socket_timeout=timeout,
    )


def redis_key(settings: Settings, *parts: object) -> str:
    """Build a Redis key under this deployment's QUEUE_PREFIX: the one place keys are named."""
    return ":".join([settings.queue_prefix, *(str(part) for part in parts)])


def queue_key(settings: Settings, name: QueueName | str) -> str:
    return redis_key(settings, QueueName(name).value)


def get_queue(settings: Settings, name: QueueName | str) -> Queue:
    return Queue(
        queue_key(settings, name),
        connection=redis_connection(settings.redis_url),
        serializer=JSONSerializer,
    )


def all_queues(settings: Settings) -> list[Queue]:
    # Order is priority order for a worker listening on all of them.
    return [
        get_queue(settings, name) for name in (QueueName.SEND, QueueName.DEFAULT, QueueName.IMPORTS)
    ]


def call_after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run `callback` once `session` commits; forget it if the session rolls back."""
    session.info.setdefault("clarion_after_commit", []).append(callback)


def job_is_live(
    settings: Settings,
    job_id: str | None,
    *,
    stale_after: float | None,
    unstarted: frozenset[str] = frozenset(),
) -> bool:
    """Return whether RQ still holds `job_id` waiting, scheduled or running.

    A job "started" more than `stale_after` seconds ago (or at all, when it is 0) counts as
    dead: RQ leaves a SIGKILLed worker's job "started" for minutes. So does a job in
    `unstarted` (dequeued_unstarted) enqueued that long ago: still "queued", it is no longer in
    its queue, and its worker died before starting it. None trusts RQ's status.
    """
    if not job_id:
        return False
    try:
        job = Job.fetch(job_id, connection=redis_connection(settings.redis_url))
    except NoSuchJobError:
        return False
    status = job.get_status(refresh=False)
    if status not in LIVE_JOB_STATUSES:
        return False
    if stale_after is None:
        return True
    if status == JobStatus.STARTED:
        return _younger_than(job.started_at, stale_after)
    if status == JobStatus.QUEUED and job_id in unstarted:
        return _younger_than(job.enqueued_at, stale_after)
    return True


def _younger_than(moment, seconds: float) -> bool:
    if moment is None:
        return seconds > 0
    return (utcnow() - moment.replace(tzinfo=utcnow().tzinfo)).total_seconds() < seconds


def dequeued_unstarted(settings: Settings, name: QueueName | str) -> frozenset[str]:
    """The ids of jobs a worker has taken off queue `name` but not started (RQ's intermediate
    list): each for milliseconds, or, if its worker died in between (SIGKILL, a lost host),
    until RQ's maintenance fails it one to two minutes later. One Redis round trip."""
    queue = get_queue(settings, name)
    ids = queue.connection.lrange(queue.intermediate_queue_key, 0, -1)
    return frozenset(i.decode() for i in ids)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    # The rows are committed whatever happens here, and the database is the source of truth:
    # the clock re-drives work whose job never reached Redis. So a Redis outage is logged and
    # the remaining callbacks still run, instead of turning a saved action into an error page.
    for callback in session.info.pop("clarion_after_commit", []):
        try:
            callback()
        except (RedisError, OSError):
            log.exception("after-commit enqueue failed; the clock will re-drive the work")


@event.listens_for(Session, "after_soft_rollback")
def _drop_after_commit(session: Session, previous_transaction) -> None:
    if not session.in_transaction():
        session.info.pop("clarion_after_commit", None)
