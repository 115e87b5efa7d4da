"""An action taken while Redis is down is kept: the page thanks the supporter, the letter waits
in the database, and the clock enqueues it once Redis is back."""

from __future__ import annotations

from dataclasses import replace

import pytest
from rq import SimpleWorker
from rq.serializers import JSONSerializer
from sqlalchemy import select

from app.campaigns.models import Letter, LetterStatus
from app.clock import run_ticks
from app.db import utcnow
from app.extensions import db
from app.jobs import letter_job_id
from app.queues import QueueName, get_queue, redis_connection
from tests.campaigns.conftest import form_of
from tests.smtp_sink import free_port


@pytest.fixture
def redis_down(app, settings):
    """Point the app's queues at a port nobody listens on: a real refused connection.

    (The rate limiter keeps its own Redis and fails open when that is down; a second app
    would rebind the one global limiter for every later test.)
    """
    app.config["CLARION"] = replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    yield
    app.config["CLARION"] = settings


def test_an_action_taken_while_redis_is_down_is_sent_once_redis_is_back(
    redis_down, client, recipient, settings, smtp_sink, redis_conn, app
):
    form = form_of(client.get(recipient.path).get_data(as_text=True))
    page = client.post(recipient.path, data=form)
    assert page.status_code == 200
    assert "Thank you, Jane!" in page.get_data(as_text=True)
    [letter] = db.session.scalars(select(Letter)).all()
    letter_id = letter.id
    assert letter.status == LetterStatus.QUEUED
    assert letter.next_attempt_at is not None and letter.next_attempt_at <= utcnow()
    queue = get_queue(settings, QueueName.DEFAULT)
    assert queue.job_ids == []  # the enqueue after commit never reached Redis

    # Redis is back: the clock finds the due letter without a job and enqueues it, once.
    app.config["CLARION"] = settings
    outcome = run_ticks(settings)
    assert outcome["letters"] == 1
    assert queue.job_ids == [letter_job_id(letter.id)]
    assert run_ticks(settings)["letters"] == 0

    # A worker runs it and the letter goes out.
    app.config["CLARION"] = replace(settings, smtp_url=smtp_sink.url)
    try:
        worker = SimpleWorker(
            [queue], connection=redis_connection(settings.redis_url), serializer=JSONSerializer
        )
        assert worker.work(burst=True)
    finally:
        app.config["CLARION"] = settings
    [received] = smtp_sink.messages
    assert received.rcpt_tos == ["todd.lyons@ice.example"]
    letter = db.session.get(Letter, letter_id)  # the job ended with the session removed
    assert letter.status == LetterStatus.SENT and letter.next_attempt_at is None
