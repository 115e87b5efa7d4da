"""Exactly-once under crashes: real worker processes, real Redis, a real SMTP sink.

The bound proved here: after a worker is SIGKILLed, every recipient gets the mail and at most
`record_every` (the size of the group of accepted messages not yet recorded) get it twice.
"""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.mailings.delivery.launch import request_send
from app.mailings.models import Delivery, DeliveryStatus, Mailing, MailingStatus
from tests.factories import make_list, make_mailing, make_supporters
from tests.smtp_sink import free_port
from tests.worker_processes import PrivateRedis, WorkerProcess, wait_until, worker_env

RECIPIENTS = 5000
RECORD_EVERY = 20

pytestmark = pytest.mark.integration


def _mailing_status(mailing_id: int) -> MailingStatus:
    db.session.rollback()
    return db.session.scalar(select(Mailing.status).where(Mailing.id == mailing_id))


def _prepare(settings) -> Mailing:
    audience = make_list()
    make_supporters(RECIPIENTS, mailing_list=audience)
    mailing = make_mailing(audience)
    db.session.commit()
    request_send(mailing, settings)
    db.session.commit()
    return mailing


def _assert_sent_exactly_once_within_bound(mailing_id: int, sink, kills: int) -> None:
    received = Counter(m.rcpt_tos[0] for m in sink.messages)
    expected = {f"supporter{n}@example.org" for n in range(RECIPIENTS)}
    assert set(received) == expected, f"missing: {len(expected - set(received))}"
    duplicates = sum(count - 1 for count in received.values())
    assert duplicates <= RECORD_EVERY * kills, f"{duplicates} duplicates"
    statuses = dict(
        db.session.execute(
            select(Delivery.status, func.count())
            .where(Delivery.mailing_id == mailing_id)
            .group_by(Delivery.status)
        ).all()
    )
    assert statuses == {DeliveryStatus.SENT: RECIPIENTS}


def test_sigkill_of_a_worker_mid_send_loses_nothing(
    settings, test_database_url, smtp_sink, redis_conn, tmp_path
):
    mailing = _prepare(settings)
    env = worker_env(settings, test_database_url, smtp_sink.url, SEND_RECORD_EVERY=RECORD_EVERY)
    victim = WorkerProcess(env, tmp_path / "victim.log")
    survivor = WorkerProcess(env, tmp_path / "survivor.log")
    try:
        wait_until(
            lambda: len(smtp_sink.messages) >= 1000,
            120,
            message="1000 sent",
            workers=[victim, survivor],
        )
        victim.kill()
        sent_at_kill = len(smtp_sink.messages)
        assert sent_at_kill < RECIPIENTS, "the send finished before the kill; test proves nothing"
        wait_until(
            lambda: _mailing_status(mailing.id) == MailingStatus.SENT,
            180,
            message="mailing sent",
            workers=[survivor],
        )
    finally:
        victim.stop()
        survivor.stop()
    _assert_sent_exactly_once_within_bound(mailing.id, smtp_sink, kills=1)


def test_send_completes_after_redis_restarts_mid_send(
    settings, test_database_url, smtp_sink, tmp_path
):
    private_redis = PrivateRedis(free_port(), tmp_path)
    private_redis.start()
    from dataclasses import replace

    settings = replace(settings, redis_url=private_redis.url)
    mailing = _prepare(settings)
    env = worker_env(settings, test_database_url, smtp_sink.url, SEND_RECORD_EVERY=RECORD_EVERY)
    workers = [WorkerProcess(env, tmp_path / f"worker{n}.log") for n in range(2)]
    try:
        wait_until(
            lambda: len(smtp_sink.messages) >= 1000, 120, message="1000 sent", workers=workers
        )
        private_redis.kill()  # every queued job is gone: this Redis keeps nothing on disk
        assert len(smtp_sink.messages) < RECIPIENTS
        private_redis.start()
        wait_until(
            lambda: _mailing_status(mailing.id) == MailingStatus.SENT,
            180,
            message="mailing sent",
            workers=workers,
        )
    finally:
        for worker in workers:
            worker.stop()
        private_redis.kill()
    # Workers that lost Redis mid-batch keep sending from the database; nobody is lost.
    _assert_sent_exactly_once_within_bound(mailing.id, smtp_sink, kills=2)
