"""The send pipeline in-process: freeze, snapshot, claim, send to a real SMTP sink, record."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import func, select

from app.extensions import db
from app.mailings.delivery.launch import request_send, start_mailing
from app.mailings.delivery.sending import send_batch
from app.mailings.models import Delivery, DeliveryStatus, Mailing, MailingStatus
from app.supporters.models import SubscriptionStatus, Supporter
from app.supporters.services import change_status
from tests.factories import make_list, make_mailing, make_supporters


def _statuses(mailing_id):
    return dict(
        db.session.execute(
            select(Delivery.status, func.count())
            .where(Delivery.mailing_id == mailing_id)
            .group_by(Delivery.status)
        ).all()
    )


def _start(settings, mailing):
    request_send(mailing, settings)
    db.session.commit()
    assert start_mailing(mailing.id, settings)
    db.session.refresh(mailing)


def test_snapshot_skips_suppressed_and_numbers_batches(settings, redis_conn):
    settings = replace(settings, batch_size=10)
    audience = make_list()
    ids = make_supporters(25, mailing_list=audience)
    change_status(
        db.session.get(Supporter, ids[0]), SubscriptionStatus.UNSUBSCRIBED, channel="test"
    )
    change_status(db.session.get(Supporter, ids[1]), SubscriptionStatus.BOUNCED, channel="test")
    mailing = make_mailing(audience)
    _start(settings, mailing)
    assert mailing.status == MailingStatus.SENDING
    assert mailing.total_recipients == 23
    assert mailing.batch_count == 3
    batches = db.session.execute(
        select(Delivery.batch_no, func.count())
        .where(Delivery.mailing_id == mailing.id)
        .group_by(Delivery.batch_no)
        .order_by(Delivery.batch_no)
    ).all()
    assert batches == [(0, 10), (1, 10), (2, 3)]
    assert not db.session.scalar(select(func.count()).where(Delivery.supporter_id.in_(ids[:2])))


def test_send_batch_delivers_each_recipient_once_and_records_message_ids(
    settings, smtp_sink, redis_conn
):
    settings = replace(settings, smtp_url=smtp_sink.url, batch_size=50, record_every=7)
    audience = make_list()
    make_supporters(40, mailing_list=audience)
    mailing = make_mailing(audience)
    _start(settings, mailing)

    result = send_batch(mailing.id, 0, settings)
    assert (result.claimed, result.sent) == (40, 40)
    assert _statuses(mailing.id) == {DeliveryStatus.SENT: 40}
    received = smtp_sink.messages
    assert sorted(m.rcpt_tos[0] for m in received) == sorted(
        f"supporter{n}@example.org" for n in range(40)
    )
    recorded = set(
        db.session.scalars(select(Delivery.message_id).where(Delivery.mailing_id == mailing.id))
    )
    assert recorded == {m.message["Message-ID"] for m in received}
    db.session.refresh(mailing)
    assert mailing.status == MailingStatus.SENT

    again = send_batch(mailing.id, 0, settings)
    assert (again.claimed, again.sent) == (0, 0)
    assert len(smtp_sink.messages) == 40


def test_message_is_personalised_and_carries_one_click_unsubscribe(settings, smtp_sink, redis_conn):
    settings = replace(settings, smtp_url=smtp_sink.url)
    audience = make_list()
    make_supporters(1, mailing_list=audience)
    mailing = make_mailing(audience)
    _start(settings, mailing)
    send_batch(mailing.id, 0, settings)

    message = smtp_sink.messages[0].message
    assert message["Subject"] == "Name0, 28 children could be deported"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "https://clarion.test/u/" in message["List-Unsubscribe"]
    assert message.get_content_type() == "multipart/alternative"
    html = message.get_body(("html",)).get_content()
    assert "Name0" in html and "https://clarion.test/a/" in html
    assert "supporter0@example.org" not in message["List-Unsubscribe"]


def test_unsubscribe_after_snapshot_stops_the_next_batch(settings, smtp_sink, redis_conn):
    settings = replace(settings, smtp_url=smtp_sink.url, batch_size=5)
    audience = make_list()
    ids = make_supporters(10, mailing_list=audience)
    mailing = make_mailing(audience)
    _start(settings, mailing)
    send_batch(mailing.id, 0, settings)
    change_status(
        db.session.get(Supporter, ids[7]), SubscriptionStatus.UNSUBSCRIBED, channel="test"
    )
    db.session.commit()
    result = send_batch(mailing.id, 1, settings)
    assert (result.sent, result.suppressed) == (4, 1)
    assert "supporter7@example.org" not in {m.rcpt_tos[0] for m in smtp_sink.messages}


def test_pause_stops_claiming_and_resume_continues(settings, smtp_sink, redis_conn):
    from app.mailings.delivery.control import pause, resume

    settings = replace(settings, smtp_url=smtp_sink.url, batch_size=5)
    audience = make_list()
    make_supporters(10, mailing_list=audience)
    mailing = make_mailing(audience)
    _start(settings, mailing)
    send_batch(mailing.id, 0, settings)
    pause(mailing, actor="test")
    db.session.commit()
    assert send_batch(mailing.id, 1, settings).sent == 0
    resume(mailing, settings, actor="test")
    db.session.commit()
    assert send_batch(mailing.id, 1, settings).sent == 5
    assert len(smtp_sink.messages) == 10


def test_cancel_marks_unsent_rows_cancelled(settings, smtp_sink, redis_conn):
    from app.mailings.delivery.control import cancel

    settings = replace(settings, smtp_url=smtp_sink.url, batch_size=5)
    audience = make_list()
    make_supporters(10, mailing_list=audience)
    mailing = make_mailing(audience)
    _start(settings, mailing)
    send_batch(mailing.id, 0, settings)
    cancel(mailing, actor="test")
    db.session.commit()
    assert send_batch(mailing.id, 1, settings).sent == 0
    assert _statuses(mailing.id) == {DeliveryStatus.SENT: 5, DeliveryStatus.CANCELLED: 5}


def test_hard_bounce_fails_row_and_suppresses_supporter(settings, smtp_sink, redis_conn):
    settings = replace(settings, smtp_url=smtp_sink.url)
    smtp_sink.refuse_with(
        lambda rcpt: "550 5.1.1 no such user" if rcpt.startswith("supporter1@") else None
    )
    audience = make_list()
    ids = make_supporters(3, mailing_list=audience)
    mailing = make_mailing(audience)
    _start(settings, mailing)
    result = send_batch(mailing.id, 0, settings)
    assert (result.sent, result.failed) == (2, 1)
    bounced = db.session.get(Supporter, ids[1])
    db.session.refresh(bounced)
    assert bounced.status == SubscriptionStatus.BOUNCED
    assert bounced.history[-1].channel == "bounce"


def test_temporary_failure_defers_with_backoff(settings, smtp_sink, redis_conn):
    settings = replace(settings, smtp_url=smtp_sink.url, retry_base_seconds=60)
    smtp_sink.refuse_with(
        lambda rcpt: "451 4.3.0 try later" if rcpt.startswith("supporter0@") else None
    )
    audience = make_list()
    make_supporters(2, mailing_list=audience)
    mailing = make_mailing(audience)
    _start(settings, mailing)
    result = send_batch(mailing.id, 0, settings)
    assert (result.sent, result.deferred) == (1, 1)
    deferred = db.session.scalar(
        select(Delivery).where(
            Delivery.mailing_id == mailing.id, Delivery.status == DeliveryStatus.DEFERRED
        )
    )
    assert deferred.next_attempt_at is not None and "451" in deferred.last_error
    db.session.refresh(mailing)
    assert mailing.status == MailingStatus.SENDING


def test_unreachable_smtp_server_defers_the_whole_batch(settings, redis_conn):
    from tests.smtp_sink import free_port

    settings = replace(settings, smtp_url=f"smtp://127.0.0.1:{free_port()}")
    audience = make_list()
    make_supporters(5, mailing_list=audience)
    mailing = make_mailing(audience)
    _start(settings, mailing)
    result = send_batch(mailing.id, 0, settings)
    assert result.sent == 0 and result.deferred == 5
    assert _statuses(mailing.id) == {DeliveryStatus.DEFERRED: 5}


def test_only_drafts_can_be_sent(settings):
    import pytest

    from app.mailings.delivery.launch import SendError

    mailing = make_mailing(make_list())
    mailing.status = MailingStatus.SENT
    with pytest.raises(SendError):
        request_send(mailing, settings)
    assert db.session.get(Mailing, mailing.id).frozen_html is None


def test_mailing_pauses_itself_when_most_attempts_fail(settings, smtp_sink, redis_conn):
    settings = replace(settings, smtp_url=smtp_sink.url, batch_size=100, error_pause_threshold=0.2)
    smtp_sink.refuse_with(lambda rcpt: "451 4.3.0 mailbox busy")
    audience = make_list()
    make_supporters(60, mailing_list=audience)
    mailing = make_mailing(audience)
    _start(settings, mailing)
    result = send_batch(mailing.id, 0, settings)
    assert result.deferred == 60
    db.session.refresh(mailing)
    assert mailing.status == MailingStatus.PAUSED
    assert "60 of 60 attempts failed" in mailing.status_reason


def test_scheduled_send_waits_for_its_time_and_the_sweep_starts_it(settings, redis_conn):
    from datetime import timedelta

    from app.db import utcnow
    from app.mailings.delivery.ticks import sweep
    from app.queues import QueueName, get_queue

    audience = make_list()
    make_supporters(3, mailing_list=audience)
    mailing = make_mailing(audience)
    request_send(mailing, settings, at=utcnow() + timedelta(hours=1))
    db.session.commit()
    assert mailing.status == MailingStatus.SCHEDULED and mailing.frozen_html
    scheduled = get_queue(settings, QueueName.SEND).scheduled_job_registry.get_job_ids()
    assert f"start-{mailing.id}" in scheduled
    assert not start_mailing(mailing.id, settings)  # not due yet
    assert _statuses(mailing.id) == {}

    # Redis may lose the scheduled job; the sweep starts any due mailing from the database.
    mailing.scheduled_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    outcome = sweep(settings)
    assert outcome["started"] == 1
    db.session.refresh(mailing)
    assert mailing.status == MailingStatus.SENDING
    assert _statuses(mailing.id) == {DeliveryStatus.QUEUED: 3}


def test_sweep_reenqueues_a_batch_whose_worker_died(settings, redis_conn):
    from datetime import timedelta

    from sqlalchemy import update

    from app.db import utcnow
    from app.mailings.delivery.sending import claim_rows
    from app.mailings.delivery.ticks import sweep
    from app.queues import QueueName, get_queue

    settings = replace(settings, batch_size=5)
    audience = make_list()
    make_supporters(5, mailing_list=audience)
    mailing = make_mailing(audience)
    _start(settings, mailing)
    queue = get_queue(settings, QueueName.SEND)
    queue.empty()  # the batch job is "lost"; a worker claimed the rows and was killed
    claimed = claim_rows(mailing.id, 0, settings.lease_seconds)
    assert len(claimed) == 5
    assert sweep(settings)["requeued"] == 0  # the lease still holds: someone is on it
    db.session.execute(
        update(Delivery)
        .where(Delivery.id.in_(claimed))
        .values(lease_until=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()
    assert sweep(settings)["requeued"] == 1
    assert any(job_id.startswith(f"send-{mailing.id}-0-s") for job_id in queue.job_ids)
    assert claim_rows(mailing.id, 0, settings.lease_seconds) == claimed  # expired: claimable
