"""A confirmation mail whose job Redis lost is enqueued again by the clock, and only then.

Without it a Redis restart without persistence (or a flush) silently dropped every action held
for confirmation: nobody mailed the link and the held row expired after a week.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta

import pytest
from rq import SimpleWorker
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer
from sqlalchemy import update

from app.campaigns.confirmations import (
    CONFIRM_MAX_AGE,
    REDRIVE_GRACE,
    RQ_GAVE_UP,
    hold_action,
    redrive_unsent_confirmations,
    send_confirmation,
)
from app.campaigns.models import PendingAction
from app.db import utcnow
from app.extensions import db
from app.jobs import SEND_ACTION_CONFIRMATION, confirmation_job_id, enqueue
from app.links.tokens import ConfirmTokens
from app.queues import QueueName, get_queue, redis_connection
from tests.campaigns.test_confirmations import confirm_link_in
from tests.factories import make_campaign
from tests.worker_processes import WorkerProcess, wait_until, worker_env

PAST_GRACE = REDRIVE_GRACE + timedelta(seconds=1)


def hold(campaign, settings, email: str) -> int:
    """Hold an action as the public form does and commit it (its job goes to Redis); its id."""
    _, pending = hold_action(
        campaign,
        name="Lee Wong",
        email=email,
        town="Hull",
        consent=True,
        letter_body=None,
        channel="public",
        consent_channel="campaign_page",
        consent_detail=f"public page of campaign {campaign.id}",
        client_hash=None,
        settings=settings,
    )
    db.session.commit()
    return pending.id


def held(pending_id: int) -> PendingAction:
    db.session.expire_all()
    return db.session.get(PendingAction, pending_id)


def lose_queued_jobs(settings) -> None:
    """Do to the queue what a Redis restart without persistence does: the jobs are gone."""
    queue = get_queue(settings, QueueName.DEFAULT)
    queue.empty()
    assert queue.job_ids == []


def run_queued_jobs(app, settings, smtp_url: str) -> None:
    """Run the default queue's jobs in this process, as a worker mailing `smtp_url` would."""
    app.config["CLARION"] = replace(settings, smtp_url=smtp_url)
    try:
        SimpleWorker(
            [get_queue(settings, QueueName.DEFAULT)],
            connection=redis_connection(settings.redis_url),
            serializer=JSONSerializer,
        ).work(burst=True)
    finally:
        app.config["CLARION"] = settings


def job_status(settings, pending_id: int) -> JobStatus:
    job = Job.fetch(
        confirmation_job_id(pending_id), connection=redis_connection(settings.redis_url)
    )
    return job.get_status()


@pytest.mark.integration
def test_a_real_worker_mails_a_confirmation_whose_job_redis_lost_exactly_once(
    settings, test_database_url, smtp_sink, redis_conn, tmp_path
):
    campaign = make_campaign()
    db.session.commit()
    pending_id = hold(campaign, settings, "lee@example.org")
    lose_queued_jobs(settings)
    # Held three minutes ago: its first job has had its chance.
    db.session.execute(
        update(PendingAction)
        .where(PendingAction.id == pending_id)
        .values(created_at=utcnow() - timedelta(minutes=3))
    )
    db.session.commit()

    worker = WorkerProcess(
        worker_env(settings, test_database_url, smtp_sink.url), tmp_path / "worker.log"
    )
    try:
        wait_until(
            lambda: smtp_sink.messages, 60, message="the confirmation mail", workers=[worker]
        )
        # The clock ticks every second: a few more ticks must not mail it again.
        time.sleep(3)
    finally:
        worker.stop()

    [mail] = smtp_sink.messages
    assert mail.rcpt_tos == ["lee@example.org"]
    token = confirm_link_in(mail).removeprefix("/confirm/")
    assert ConfirmTokens(settings.secret_keys).loads(token, max_age=CONFIRM_MAX_AGE) == pending_id
    assert held(pending_id).mail_sent_at is not None
    assert redrive_unsent_confirmations(settings) == 0


def test_a_lost_job_is_enqueued_again_after_the_grace_period_once(
    app, settings, smtp_sink, campaign, redis_conn
):
    pending_id = hold(campaign, settings, "lee@example.org")
    created = held(pending_id).created_at
    lose_queued_jobs(settings)

    assert redrive_unsent_confirmations(settings, now=created + REDRIVE_GRACE / 2) == 0
    assert get_queue(settings, QueueName.DEFAULT).job_ids == []
    assert redrive_unsent_confirmations(settings, now=created + PAST_GRACE) == 1
    assert get_queue(settings, QueueName.DEFAULT).job_ids == [confirmation_job_id(pending_id)]
    # The new job is live: the next tick leaves it alone.
    assert redrive_unsent_confirmations(settings, now=created + PAST_GRACE) == 0
    assert len(get_queue(settings, QueueName.DEFAULT).job_ids) == 1

    run_queued_jobs(app, settings, smtp_sink.url)
    [mail] = smtp_sink.messages
    assert mail.rcpt_tos == ["lee@example.org"]
    assert held(pending_id).mail_sent_at is not None
    assert redrive_unsent_confirmations(settings, now=created + timedelta(hours=1)) == 0
    assert get_queue(settings, QueueName.DEFAULT).job_ids == []


def test_a_queued_job_or_one_waiting_for_rqs_retry_is_not_duplicated(
    app, settings, smtp_sink, campaign, redis_conn
):
    pending_id = hold(campaign, settings, "lee@example.org")
    later = held(pending_id).created_at + timedelta(minutes=10)
    assert redrive_unsent_confirmations(settings, now=later) == 0
    assert get_queue(settings, QueueName.DEFAULT).job_ids == [confirmation_job_id(pending_id)]

    # A temporary refusal: the job raises and RQ schedules its retry.
    smtp_sink.refuse_with(lambda address: "451 4.7.1 Try again later")
    run_queued_jobs(app, settings, smtp_sink.url)
    assert job_status(settings, pending_id) == JobStatus.SCHEDULED
    assert redrive_unsent_confirmations(settings, now=later) == 0
    assert get_queue(settings, QueueName.DEFAULT).job_ids == []
    pending = held(pending_id)
    assert pending.mail_sent_at is None and pending.mail_failed_at is None
    assert smtp_sink.messages == []


def test_expired_confirmed_and_refused_actions_are_not_redriven(
    settings, smtp_sink, campaign, redis_conn
):
    confirmed = hold(campaign, settings, "confirmed@example.org")
    refused = hold(campaign, settings, "refused@example.org")
    owed = hold(campaign, settings, "owed@example.org")
    held(confirmed).confirmed_at = utcnow()
    db.session.commit()
    smtp_sink.refuse_with(
        lambda address: "550 5.1.1 No such user" if address.startswith("refused") else None
    )
    assert send_confirmation(refused, replace(settings, smtp_url=smtp_sink.url)) == "failed"
    assert smtp_sink.messages == []
    pending = held(refused)
    assert pending.mail_failed_at is not None and "No such user" in pending.mail_error
    lose_queued_jobs(settings)
    created = held(owed).created_at

    # Past the link's week every row is expired, the owed one too.
    expired = created + timedelta(seconds=CONFIRM_MAX_AGE + 1)
    assert redrive_unsent_confirmations(settings, now=expired) == 0
    assert get_queue(settings, QueueName.DEFAULT).job_ids == []
    # Before that only the row still owed its mail gets a job.
    assert redrive_unsent_confirmations(settings, now=created + PAST_GRACE) == 1
    assert get_queue(settings, QueueName.DEFAULT).job_ids == [confirmation_job_id(owed)]


def test_a_job_rq_gave_up_on_is_recorded_and_not_redriven(
    app, settings, smtp_sink, campaign, redis_conn
):
    pending_id = hold(campaign, settings, "lee@example.org")
    lose_queued_jobs(settings)
    # The same job with its retries already spent, so one more temporary failure ends it.
    enqueue(SEND_ACTION_CONFIRMATION, settings, pending_id, retries=0)
    smtp_sink.refuse_with(lambda address: "451 4.7.1 Try again later")
    run_queued_jobs(app, settings, smtp_sink.url)
    assert job_status(settings, pending_id) == JobStatus.FAILED
    later = held(pending_id).created_at + PAST_GRACE

    assert redrive_unsent_confirmations(settings, now=later) == 0
    db.session.commit()
    pending = held(pending_id)
    assert pending.mail_failed_at is not None and pending.mail_error == RQ_GAVE_UP
    failed_at = pending.mail_failed_at
    assert get_queue(settings, QueueName.DEFAULT).job_ids == []
    # Recorded once: the row is no longer among those owed a mail.
    assert redrive_unsent_confirmations(settings, now=later + timedelta(hours=1)) == 0
    assert held(pending_id).mail_failed_at == failed_at
    assert smtp_sink.messages == []
