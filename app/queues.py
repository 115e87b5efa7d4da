"""Redis connection, Clarion's named RQ queues, and enqueueing only after the commit.

A job enqueued before the transaction that created its rows commits can run before those rows
are visible (or after they were rolled back), so services call `enqueue_after_commit` and the
jobs are pushed to Redis by the session's after_commit hook.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from functools import cache, partial

from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.config import Settings

log = logging.getLogger(__name__)


class QueueName(enum.StrEnum):
    SEND = "send"  # mailing batches: latency matters, keep it free of slow work
    IMPORTS = "imports"
    DEFAULT = "default"


@cache
def redis_connection(url: str) -> Redis:
    return Redis.from_url(url, health_check_interval=30, socket_connect_timeout=5)


def queue_key(settings: Settings, name: QueueName | str) -> str:
    return f"{settings.queue_prefix}:{QueueName(name).value}"


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


def enqueue_after_commit(
    session: Session, settings: Settings, queue: QueueName, func: str, *args, **options
) -> None:
    """Enqueue `func(*args)` on `queue` once `session` commits; drop it if it rolls back."""
    call_after_commit(session, partial(enqueue_now, settings, queue, func, *args, **options))


def enqueue_now(settings: Settings, queue: QueueName, func: str, *args, **options):
    return get_queue(settings, queue).enqueue(func, *args, **options)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    for callback in session.info.pop("clarion_after_commit", []):
        callback()


@event.listens_for(Session, "after_soft_rollback")
def _drop_after_commit(session: Session, previous_transaction) -> None:
    if not session.in_transaction():
        session.info.pop("clarion_after_commit", None)
