"""The job registry (app/jobs.py): complete, resolvable, and what it says is what RQ stores."""

from __future__ import annotations

import importlib
import inspect
import logging
import pkgutil
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from redis.exceptions import RedisError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer
from rq.utils import import_attribute
from sqlalchemy import text

import workers
from app import jobs
from app.config import PROJECT_ROOT, Settings
from app.db import utcnow
from app.extensions import db
from app.jobs import (
    JOBS,
    RUN_IMPORT,
    SEND_ACTION_CONFIRMATION,
    SEND_BATCH,
    SEND_LETTER,
    SEND_STAFF_MAIL,
    START_MAILING,
    enqueue,
    prepared,
    queue_of,
)
from app.queues import dequeued_unstarted, job_is_live, queue_key, redis_key
from app.tracking.buffer import events_key
from tests.smtp_sink import free_port

# Modules of workers/ that hold no jobs; a new module must be added here or hold only jobs.
NOT_JOB_MODULES = {"workers.cli", "workers.runtime", "workers.mailcapture"}
# The jobs whose id comes from their arguments alone, each with arguments to enqueue it with.
ARGS = {
    START_MAILING: (41,),
    SEND_LETTER: (42,),
    SEND_ACTION_CONFIRMATION: (43,),
    RUN_IMPORT: (44,),
    SEND_STAFF_MAIL: (45, "reset"),
}


def fetch(job_id: str, redis_conn) -> Job:
    return Job.fetch(job_id, connection=redis_conn, serializer=JSONSerializer)


def assert_options(job: Job, spec: jobs.JobSpec, settings: Settings, *, timeout=None) -> None:
    assert job.func_name == spec.func
    assert job.origin == queue_key(settings, spec.queue)
    assert job.timeout == (timeout or spec.timeout)
    assert job.result_ttl == spec.result_ttl
    assert job.failure_ttl == spec.failure_ttl
    if spec.retries:
        assert job.retries_left == spec.retries
        assert job.retry_intervals == list(spec.retry_intervals)
    else:
        assert job.retries_left is None


def test_every_spec_names_a_job_in_workers_and_every_job_there_has_a_spec():
    specs_by_func = {spec.func: spec for spec in JOBS}
    assert len(specs_by_func) == len(JOBS)
    job_modules = {func.rsplit(".", 1)[0] for func in specs_by_func}
    found = set()
    for info in pkgutil.iter_modules(workers.__path__, "workers."):
        if info.name in NOT_JOB_MODULES:
            continue
        assert info.name in job_modules, f"{info.name} holds no registered job"
        module = importlib.import_module(info.name)
        for name, func in inspect.getmembers(module, inspect.isfunction):
            if func.__module__ == info.name and not name.startswith("_"):
                found.add(f"{info.name}.{name}")
    assert found == set(specs_by_func)
    for path in specs_by_func:
        job = import_attribute(path)  # how an RQ worker finds it
        assert callable(job)
        # Every job runs in the one job context (app context, session removed afterwards).
        assert "with job_context() as settings:" in inspect.getsource(job), path


def test_job_ids_are_deterministic_and_distinct_per_job():
    assert START_MAILING.job_id(7) == "start-7"
    assert SEND_BATCH.job_id(7, 3, 0) == "send-7-3-0"
    assert SEND_BATCH.job_id(7, 3, "s12") != SEND_BATCH.job_id(7, 3, 0)
    assert SEND_LETTER.job_id(7) == "letter-7" == jobs.letter_job_id(7)
    assert SEND_ACTION_CONFIRMATION.job_id(7) == "confirm-action-7"
    assert RUN_IMPORT.job_id(7) == "import-7"
    assert SEND_STAFF_MAIL.job_id(7, "invite") == "staff-mail-invite-7"
    args = {SEND_BATCH: (7, 3, 0), SEND_STAFF_MAIL: (7, "reset")}
    ids = {spec.job_id(*args.get(spec, (7,))) for spec in JOBS}
    assert len(ids) == len(JOBS)


@pytest.mark.parametrize("spec", list(ARGS), ids=lambda spec: spec.func)
def test_a_job_reaches_redis_only_when_the_session_commits(spec, settings, redis_conn):
    args = ARGS[spec]
    db.session.execute(text("SELECT 1"))
    assert enqueue(spec, settings, *args, after_commit_of=db.session) is None
    assert queue_of(spec, settings).job_ids == []
    db.session.rollback()
    db.session.execute(text("SELECT 1"))
    db.session.commit()
    assert queue_of(spec, settings).job_ids == []  # the rolled-back enqueue is forgotten

    enqueue(spec, settings, *args, after_commit_of=db.session)
    db.session.commit()
    assert queue_of(spec, settings).job_ids == [spec.job_id(*args)]
    job = fetch(spec.job_id(*args), redis_conn)
    assert job.args == list(args)
    assert_options(job, spec, settings)


@pytest.mark.parametrize("spec", list(ARGS), ids=lambda spec: spec.func)
def test_a_job_enqueued_now_carries_its_specs_options(spec, settings, redis_conn):
    job = enqueue(spec, settings, *ARGS[spec])
    assert job.get_status() == JobStatus.QUEUED
    assert_options(fetch(spec.job_id(*ARGS[spec]), redis_conn), spec, settings)


def test_overrides_apply_to_one_call_and_a_misspelt_option_is_refused(settings, redis_conn):
    enqueue(SEND_LETTER, settings, 5, timeout=999)
    assert_options(fetch("letter-5", redis_conn), SEND_LETTER, settings, timeout=999)
    assert SEND_LETTER.timeout == 120
    with pytest.raises(TypeError):
        enqueue(SEND_LETTER, settings, 6, job_timeout=999)
    assert queue_of(SEND_LETTER, settings).job_ids == ["letter-5"]


def test_batches_are_prepared_with_the_specs_options_and_their_own_timeout(settings, redis_conn):
    job_id = SEND_BATCH.job_id(9, 2, 0)
    queue_of(SEND_BATCH, settings).enqueue_many(
        [prepared(SEND_BATCH, 9, 2, job_id=job_id, timeout=321)]
    )
    job = fetch(job_id, redis_conn)
    assert job.args == [9, 2]
    assert_options(job, SEND_BATCH, settings, timeout=321)


def test_a_later_start_is_scheduled_with_the_specs_options(settings, redis_conn):
    at = utcnow() + timedelta(hours=1)
    enqueue(START_MAILING, settings, 8, after_commit_of=db.session, at=at)
    db.session.commit()
    queue = queue_of(START_MAILING, settings)
    assert queue.job_ids == []
    assert queue.scheduled_job_registry.get_job_ids() == ["start-8"]
    job = fetch("start-8", redis_conn)
    assert job.get_status() == JobStatus.SCHEDULED
    assert_options(job, START_MAILING, settings)


def test_redis_down_after_commit_is_logged_but_down_now_raises(settings, caplog, monkeypatch):
    # Alembic's logging setup (the migrations the app fixture runs) disables existing loggers.
    monkeypatch.setattr(logging.getLogger("app.queues"), "disabled", False)
    away = replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    enqueue(SEND_LETTER, away, 5, after_commit_of=db.session)
    with caplog.at_level(logging.ERROR, logger="app.queues"):
        db.session.commit()  # the rows are saved; the clock re-drives the letter
    assert "after-commit enqueue failed" in caplog.text
    with pytest.raises((RedisError, OSError)):
        enqueue(SEND_LETTER, away, 5)


def test_redis_keys_keep_their_names():
    settings = Settings.from_env({})
    assert settings.queue_prefix == "clarion"
    assert redis_key(settings, "mailing", 7, "outcomes") == "clarion:mailing:7:outcomes"
    assert redis_key(settings, "clock") == "clarion:clock"
    assert queue_key(settings, "send") == "clarion:send"
    assert events_key(settings) == "clarion:tracking:events"


def test_only_app_queues_builds_keys_from_the_prefix():
    sources = [
        *Path(PROJECT_ROOT, "app").rglob("*.py"),
        *Path(PROJECT_ROOT, "workers").rglob("*.py"),
    ]
    building = {
        str(path.relative_to(PROJECT_ROOT))
        for path in sources
        if "queue_prefix" in path.read_text() and path.name not in {"config.py", "queues.py"}
    }
    assert building == set()


def test_a_job_taken_off_its_queue_by_a_worker_that_died_before_starting_it_is_dead(
    settings, redis_conn
):
    """RQ moves a job to the queue's intermediate list, then marks it started; a worker killed
    in between leaves it "queued" in no queue. The sweep must see that at once (leases, not
    job ids, keep a batch from going twice), not when RQ's maintenance fails it minutes later."""
    queue = queue_of(SEND_BATCH, settings)
    taken = queue.enqueue(SEND_BATCH.func, 41, 3, job_id="send-41-3-test")
    waiting = queue.enqueue(SEND_BATCH.func, 41, 4, job_id="send-41-4-test")
    redis_conn.lmove(queue.key, queue.intermediate_queue_key, "LEFT", "RIGHT")  # the oldest
    unstarted = dequeued_unstarted(settings, SEND_BATCH.queue)
    assert unstarted == {taken.id} and taken.get_status() == JobStatus.QUEUED

    assert not job_is_live(settings, taken.id, stale_after=0, unstarted=unstarted)
    # Enqueued less than `stale_after` ago: a live worker may be about to start it.
    assert job_is_live(settings, taken.id, stale_after=60, unstarted=unstarted)
    # A job still waiting in its queue is live however old; without the list nothing changes.
    assert job_is_live(settings, waiting.id, stale_after=0, unstarted=unstarted)
    assert job_is_live(settings, taken.id, stale_after=0)
