"""Every RQ job Clarion runs, named once with its queue, id scheme, timeout, TTLs and retries.

Services enqueue a `JobSpec`, never a string: the dotted path of the thin job in workers/ is
written here and nowhere else, so its options cannot drift apart between the places that queue
it (a first enqueue, the clock's redrive, a resume). The registry names the job functions by
path instead of importing them because workers/ sit above every domain and import them.
tests/test_jobs.py checks that every path resolves and that every job in workers/ is here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from rq import Queue, Retry
from rq.job import Job, JobStatus
from sqlalchemy.orm import Session

from app.config import Settings
from app.queues import QueueName, call_after_commit, get_queue, job_is_live

WEEK = 7 * 24 * 3600


@dataclass(frozen=True)
class JobSpec:
    """How one job is queued. None leaves an option at RQ's default."""

    func: str  # dotted path of the job function in workers/
    queue: QueueName
    job_id: Callable[..., str] | None = None  # deterministic id, from the job's arguments
    timeout: int | None = None
    result_ttl: int | None = None
    failure_ttl: int | None = None
    retries: int = 0  # retries after a job raises (or its worker dies), not counting the first try
    retry_intervals: tuple[int, ...] = (0,)

    def retry(self) -> Retry | None:
        return (
            Retry(max=self.retries, interval=list(self.retry_intervals)) if self.retries else None
        )


def start_mailing_job_id(mailing_id: int) -> str:
    # One start per mailing: the scheduled job and a "send now" share the id.
    return f"start-{mailing_id}"


def send_batch_job_id(mailing_id: int, batch_no: int, generation: int | str) -> str:
    # Deterministic within a generation (a second start enqueues nothing new); each sweep or
    # resume is a new generation, so a job RQ still remembers does not swallow the new one.
    return f"send-{mailing_id}-{batch_no}-{generation}"


def letter_job_id(letter_id: int) -> str:
    return f"letter-{letter_id}"


def confirmation_job_id(pending_id: int) -> str:
    return f"confirm-action-{pending_id}"


def import_job_id(import_id: int) -> str:
    return f"import-{import_id}"


def staff_mail_job_id(user_id: int, kind: str) -> str:
    # Named for whose mail it is, so RQ's registries say it. Two requests close together may
    # send two mails: harmless, each link works until a password is set with either.
    return f"staff-mail-{kind}-{user_id}"


START_MAILING = JobSpec(
    func="workers.jobs.start_mailing",
    queue=QueueName.SEND,
    job_id=start_mailing_job_id,
    timeout=1800,  # snapshotting a large audience takes minutes
)
SEND_BATCH = JobSpec(
    func="workers.jobs.send_batch",
    queue=QueueName.SEND,
    # Needs the generation too: app/mailings/delivery/fanout.py passes the id it builds with this.
    job_id=send_batch_job_id,
    # No timeout here: it depends on the mailing's send_rate, so app/mailings/delivery/fanout.py
    # (the one place that queues batches) passes batch_job_timeout() with every enqueue.
    result_ttl=600,
    failure_ttl=WEEK,
    retries=3,
    retry_intervals=(5, 30, 120),
)
SEND_LETTER = JobSpec(
    func="workers.letters.send_letter",
    queue=QueueName.DEFAULT,
    job_id=letter_job_id,
    timeout=120,
    result_ttl=600,
    failure_ttl=WEEK,
    # Only for a job that crashes; send failures are recorded on the letter, not raised.
    retries=2,
    retry_intervals=(30, 300),
)
SEND_ACTION_CONFIRMATION = JobSpec(
    func="workers.confirmations.send_action_confirmation",
    queue=QueueName.DEFAULT,
    job_id=confirmation_job_id,
    timeout=60,
    result_ttl=600,
    failure_ttl=WEEK,
    retries=5,
    retry_intervals=(30, 120, 600, 1800, 3600),
)
RUN_IMPORT = JobSpec(
    func="workers.imports.run_import",
    queue=QueueName.IMPORTS,
    job_id=import_job_id,
    timeout=3600,
    retries=2,
)
SEND_STAFF_MAIL = JobSpec(
    func="workers.staff_mail.send_staff_mail",
    queue=QueueName.DEFAULT,
    job_id=staff_mail_job_id,
    timeout=60,
    result_ttl=600,
    failure_ttl=WEEK,
    # A reset link is wanted now: retry a few times within the hour the link lasts.
    retries=3,
    retry_intervals=(30, 120, 600),
)

JOBS: tuple[JobSpec, ...] = (
    START_MAILING,
    SEND_BATCH,
    SEND_LETTER,
    SEND_ACTION_CONFIRMATION,
    RUN_IMPORT,
    SEND_STAFF_MAIL,
)


def _rq_call(spec: JobSpec, args: tuple, job_id: str | None, overrides: dict) -> dict:
    """Return the keyword arguments RQ's create_job / prepare_data take for this call."""
    spec = replace(spec, **overrides)  # a misspelt option is a TypeError, not ignored
    if job_id is None and spec.job_id is not None:
        job_id = spec.job_id(*args)
    return {
        "func": spec.func,
        "args": args,
        "job_id": job_id,
        "timeout": spec.timeout,
        "result_ttl": spec.result_ttl,
        "failure_ttl": spec.failure_ttl,
        "retry": spec.retry(),
    }


def without_live_job(spec: JobSpec, settings: Settings, rows: list) -> list:
    """The rows (each with an `id`, the job's argument) whose job is neither queued nor running.

    A job still "started" past its timeout plus a minute has lost its worker: not live. The
    clock re-drives what this returns (letters, confirmation mails).
    """
    stale_after = spec.timeout + 60
    return [
        row
        for row in rows
        if not job_is_live(settings, spec.job_id(row.id), stale_after=stale_after)
    ]


def queue_of(spec: JobSpec, settings: Settings) -> Queue:
    return get_queue(settings, spec.queue)


def enqueue(
    spec: JobSpec,
    settings: Settings,
    *args,
    after_commit_of: Session | None = None,
    at: datetime | None = None,
    job_id: str | None = None,
    **overrides,
) -> Job | None:
    """Queue `spec`'s job with `args` (ids and primitives), now or once a session commits.

    With `after_commit_of` the job goes to Redis only when that session commits (the rows the
    job reads must be visible first) and is dropped if it rolls back; a Redis outage then is
    logged, not raised (app/queues.py): the clock re-drives the work from the database. Without
    it the job is queued now and a Redis error propagates. `at` schedules it for RQ's
    scheduler. `job_id` replaces the spec's id (SEND_BATCH's needs more than the arguments);
    `overrides` replace spec options for this call (e.g. `timeout=`).
    """
    call = _rq_call(spec, args, job_id, overrides)

    def push() -> Job:
        queue = queue_of(spec, settings)
        if at is None:
            return queue.enqueue_call(**call)
        return queue.schedule_job(queue.create_job(**call, status=JobStatus.SCHEDULED), at)

    if after_commit_of is not None:
        call_after_commit(after_commit_of, push)
        return None
    return push()


def prepared(spec: JobSpec, *args, job_id: str | None = None, **overrides):
    """Return `spec`'s job as RQ EnqueueData, for `Queue.enqueue_many` in one pipeline."""
    return Queue.prepare_data(**_rq_call(spec, args, job_id, overrides))
