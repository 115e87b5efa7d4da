"""A slow mailing's batch jobs get a timeout that fits its send_rate, however they are queued.

Every send batch is enqueued through `enqueue_send_batches`; these tests look at the jobs the
start, the sweep and resume put on Redis, then send at a low rate through a real worker.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pytest
from rq.job import Job
from rq.serializers import JSONSerializer
from sqlalchemy import func, select, update

from app.db import utcnow
from app.extensions import db
from app.mailings.delivery import control
from app.mailings.delivery.fanout import batch_job_timeout, requeue_stalled_batches
from app.mailings.delivery.launch import request_send, start_mailing
from app.mailings.delivery.sending import claim_rows
from app.mailings.models import Delivery, DeliveryStatus, Mailing, MailingStatus
from app.queues import QueueName, get_queue
from tests.factories import make_list, make_mailing, make_supporters
from tests.worker_processes import WorkerProcess, wait_until, worker_env


def _job(redis_conn, job_id) -> Job:
    return Job.fetch(job_id, connection=redis_conn, serializer=JSONSerializer)


def test_every_enqueue_of_a_batch_gets_the_timeout_of_the_mailings_rate(settings, redis_conn):
    settings = replace(settings, batch_size=500)
    audience = make_list()
    make_supporters(3, mailing_list=audience)
    mailing = make_mailing(audience, send_rate=5)
    request_send(mailing, settings)
    db.session.commit()
    # 500 rows at 5 msg/s take 100 s: three times that and a minute, not the default 67 s.
    expected = batch_job_timeout(settings, 5)
    assert expected == 360

    assert start_mailing(mailing.id, settings)
    started = _job(redis_conn, f"send-{mailing.id}-0-0")
    assert started.timeout == expected
    assert started.func_name == "workers.jobs.send_batch" and started.args == [mailing.id, 0]
    assert started.retries_left == 3 and started.failure_ttl == 7 * 24 * 3600

    queue = get_queue(settings, QueueName.SEND)
    queue.empty()  # the job is lost and a worker's lease on the rows ran out
    claimed = claim_rows(mailing.id, 0, settings.lease_seconds)
    db.session.execute(
        update(Delivery)
        .where(Delivery.id.in_(claimed))
        .values(lease_until=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()
    assert requeue_stalled_batches(settings, mailing) == 1
    [swept] = [_job(redis_conn, job_id) for job_id in queue.job_ids]
    assert swept.id.startswith(f"send-{mailing.id}-0-s") and swept.timeout == expected

    queue.empty()
    db.session.execute(
        update(Delivery)
        .where(Delivery.mailing_id == mailing.id)
        .values(status=DeliveryStatus.QUEUED, lease_until=None)
    )
    control.pause(mailing, actor="test")
    db.session.commit()
    control.resume(mailing, settings, actor="test")
    assert queue.job_ids == []  # resume enqueues only once its commit is done
    db.session.commit()
    [resumed] = [_job(redis_conn, job_id) for job_id in queue.job_ids]
    assert resumed.id.startswith(f"send-{mailing.id}-0-r") and resumed.timeout == expected


# 18 messages at 0.25/s take 68 s: longer than the 60 s the default rate's timeout gives a
# batch of 18, so a batch queued without the mailing's rate is killed half way.
SLOW_RECIPIENTS = 18
SLOW_RATE = 0.25


@pytest.mark.integration
def test_a_slow_mailing_is_sent_by_a_real_worker_within_one_job(
    settings, test_database_url, smtp_sink, redis_conn, tmp_path
):
    audience = make_list()
    make_supporters(SLOW_RECIPIENTS, mailing_list=audience)
    mailing = make_mailing(audience, send_rate=SLOW_RATE)
    db.session.commit()
    request_send(mailing, settings)
    db.session.commit()
    # One batch holds every recipient, so one job must last the whole send.
    env = worker_env(settings, test_database_url, smtp_sink.url, SEND_BATCH_SIZE=SLOW_RECIPIENTS)
    worker = WorkerProcess(env, tmp_path / "worker.log")
    try:

        def mailing_sent():
            db.session.rollback()
            status = db.session.scalar(select(Mailing.status).where(Mailing.id == mailing.id))
            return status == MailingStatus.SENT

        wait_until(mailing_sent, 180, interval=1, message="mailing sent", workers=[worker])
    finally:
        worker.stop()
    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert "JobTimeoutException" not in log

    received = Counter(m.rcpt_tos[0] for m in smtp_sink.messages)
    assert set(received) == {f"supporter{n}@example.org" for n in range(SLOW_RECIPIENTS)}
    assert max(received.values()) == 1
    first, last = db.session.execute(
        select(func.min(Delivery.sent_at), func.max(Delivery.sent_at)).where(
            Delivery.mailing_id == mailing.id
        )
    ).one()
    # The rate held: the send took as long as it should, so the job really ran that long.
    assert (last - first).total_seconds() >= (SLOW_RECIPIENTS - 1) / SLOW_RATE - 2

    job = _job(redis_conn, f"send-{mailing.id}-0-0")
    worker_settings = replace(settings, batch_size=SLOW_RECIPIENTS)
    assert job.timeout == batch_job_timeout(worker_settings, SLOW_RATE) > 68
    assert job.get_status() == "finished" and job.retries_left == 3
    assert get_queue(settings, QueueName.SEND).failed_job_registry.count == 0


def test_the_sweep_leaves_a_fresh_start_to_its_own_fan_out(settings, redis_conn):
    """Batches of a just-started mailing with no job recorded yet are the start's, still being
    enqueued; once a lease has passed they count as lost and get jobs."""
    from app.mailings.delivery.fanout import _jobs_key

    settings = replace(settings, batch_size=2)
    audience = make_list()
    make_supporters(6, mailing_list=audience)
    mailing = make_mailing(audience)
    request_send(mailing, settings)
    db.session.commit()
    assert start_mailing(mailing.id, settings)
    queue = get_queue(settings, QueueName.SEND)
    queue.empty()
    redis_conn.delete(_jobs_key(settings, mailing.id))  # as if the fan-out had not got there
    db.session.refresh(mailing)
    assert requeue_stalled_batches(settings, mailing) == 0
    assert queue.job_ids == []

    db.session.execute(
        update(Mailing)
        .where(Mailing.id == mailing.id)
        .values(started_at=utcnow() - timedelta(seconds=settings.lease_seconds + 1))
    )
    db.session.commit()
    db.session.refresh(mailing)
    assert requeue_stalled_batches(settings, mailing) == 3
    assert len(queue.job_ids) == 3
