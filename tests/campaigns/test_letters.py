"""Letters to targets: sent through real SMTP (a strict server), capped per hour, retried from
the database, held for the post."""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import replace
from datetime import timedelta

import pytest
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from app.campaigns.letters import deliver_letter, redrive_due_letters
from app.campaigns.models import Letter, LetterStatus
from app.campaigns.services import record_action
from app.db import utcnow
from app.extensions import db
from app.jobs import letter_job_id
from app.queues import QueueName, get_queue
from tests.factories import make_campaign, make_supporter
from tests.smtp_sink import SmtpSink

POSTAL = {
    "name": "Kristi Noem",
    "title": "Secretary of Homeland Security",
    "organisation": "U.S. Department of Homeland Security",
    "salutation": "Dear Secretary Noem",
    "email": None,
    "postal_address": "2707 Martin Luther King Jr. Avenue, SE\nWashington, DC 20528\nUSA",
}
TWO_TARGETS = [
    {"name": "Todd Lyons", "salutation": "Dear Acting Director Lyons", "email": "t@ice.example"},
    {**POSTAL, "name": "Ana Ruiz", "salutation": "Dear Ms Ruiz", "email": "ana@gov.example"},
]


@pytest.fixture
def smtp_sink():
    """A loopback server as strict as Postfix >= 3.9: bare LF or a 999-octet line gets a 500."""
    sink = SmtpSink(strict=True)
    sink.start()
    yield sink
    sink.stop()


def act(campaign, email="jane@example.org", *, settings=None, letter_body=None, **data):
    supporter = make_supporter(email, **data)
    action, _ = record_action(
        campaign, supporter, channel="public", settings=settings, letter_body=letter_body
    )
    db.session.commit()
    return action


def test_letter_reaches_the_target_from_the_org_with_reply_to_the_supporter(settings, smtp_sink):
    campaign = make_campaign()
    action = act(campaign)
    [letter] = action.letters
    outcome = deliver_letter(letter.id, replace(settings, smtp_url=smtp_sink.url))
    assert outcome.status == "sent"
    [received] = smtp_sink.messages
    message = received.message
    assert received.rcpt_tos == ["todd.lyons@ice.example"]
    assert received.mail_from == "alerts@clarion.test"
    assert message["Reply-To"] == "Jane Doe <jane@example.org>"
    assert message["From"] == f"Jane Doe via {settings.organisation_name} <alerts@clarion.test>"
    assert "jane@example.org" not in message["From"]
    assert message["Subject"] == "Release Cesar and Norelia"
    assert message.get_content_type() == "text/plain"
    assert message["Date"] is not None
    body = message.get_content().replace("\r\n", "\n")
    assert body.startswith("Dear Acting Director Lyons,") and "Jane Doe\nSpringfield" in body
    db.session.refresh(letter)
    assert letter.status == LetterStatus.SENT and letter.message_id == message["Message-ID"]
    assert letter.next_attempt_at is None
    # Run twice (RQ delivers at least once): nothing more is sent.
    assert deliver_letter(letter.id, replace(settings, smtp_url=smtp_sink.url)).status == "done"
    assert len(smtp_sink.messages) == 1


def test_a_long_non_ascii_letter_passes_a_strict_server_intact(settings, smtp_sink):
    # 300 of 300 letters like this one were refused "500 Line too long" and marked failed.
    paragraph = (
        "Sehr geehrter Herr Lyons, ich schreibe Ihnen wegen Cesar und Norelia — bitte lassen "
        "Sie die Eltern frei, damit die drei Kinder nicht länger allein sind; «Familien gehören "
        "zusammen», und ich zähle auf Ihre Menschlichkeit. "
    ) * 6
    assert len(paragraph.encode()) >= 1200 and "\n" not in paragraph
    text = "Dear Acting Director Lyons,\n\n" + paragraph.strip() + "\n\nJane Doe"
    action = act(make_campaign(), letter_body=text)
    [letter] = action.letters
    assert deliver_letter(letter.id, replace(settings, smtp_url=smtp_sink.url)).status == "sent"
    [received] = smtp_sink.messages
    assert received.message.get_content().replace("\r\n", "\n") == text + "\n"


def test_each_target_gets_its_own_salutation(settings, smtp_sink):
    campaign = make_campaign(targets=TWO_TARGETS)
    action = act(campaign)
    for letter in action.letters:
        deliver_letter(letter.id, replace(settings, smtp_url=smtp_sink.url))
    bodies = {m.rcpt_tos[0]: m.message.get_content() for m in smtp_sink.messages}
    assert bodies["ana@gov.example"].startswith("Dear Ms Ruiz,")
    assert bodies["t@ice.example"].startswith("Dear Acting Director Lyons,")


def test_a_model_letter_without_a_salutation_placeholder_is_still_addressed(
    settings, smtp_sink, client
):
    body = "I urge you to release Cesar and Norelia.\n\nYours sincerely,\n{supporter_name}"
    campaign = make_campaign(targets=TWO_TARGETS, letter_body=body)
    db.session.commit()
    page = client.get(f"/campaigns/{campaign.slug}").get_data(as_text=True)
    assert "Dear Acting Director Lyons,\n\nI urge you" in page

    model = act(campaign)
    edited = act(
        campaign,
        "amir@example.net",
        letter_body="Dear Acting Director Lyons,\n\nAs a nurse I urge you to release them.",
    )
    sink = replace(settings, smtp_url=smtp_sink.url)
    for letter in model.letters + edited.letters:
        assert deliver_letter(letter.id, sink).status == "sent"
    got = sorted(
        (m.message["Reply-To"].addresses[0].addr_spec, m.rcpt_tos[0], m.message.get_content())
        for m in smtp_sink.messages
    )
    assert [(who, to, text.split(",")[0]) for who, to, text in got] == [
        ("amir@example.net", "ana@gov.example", "Dear Ms Ruiz"),
        ("amir@example.net", "t@ice.example", "Dear Acting Director Lyons"),
        ("jane@example.org", "ana@gov.example", "Dear Ms Ruiz"),
        ("jane@example.org", "t@ice.example", "Dear Acting Director Lyons"),
    ]
    assert (
        got[0][2].replace("\r\n", "\n")
        == "Dear Ms Ruiz,\n\nAs a nurse I urge you to release them.\n"
    )
    assert "I urge you to release Cesar and Norelia." in got[2][2]


def test_our_own_protocol_errors_keep_the_letter_queued_for_retry(
    settings, smtp_sink, caplog, monkeypatch
):
    # Alembic's fileConfig (run by the app fixture's upgrade) disables loggers that exist.
    monkeypatch.setattr(logging.getLogger("app.campaigns.letters"), "disabled", False)
    # The server says it cannot parse what we sent: our fault, not the target's bounce.
    smtp_sink.refuse_with(lambda rcpt: "500 5.5.2 Syntax error, command unrecognized")
    campaign = make_campaign()
    [letter] = act(campaign).letters
    before = utcnow()
    with caplog.at_level(logging.ERROR, logger="app.campaigns.letters"):
        outcome = deliver_letter(letter.id, replace(settings, smtp_url=smtp_sink.url))
    assert outcome.status == "deferred"
    db.session.refresh(letter)
    assert letter.status == LetterStatus.QUEUED and letter.attempts == 1
    assert letter.error.startswith("local error, will retry: 500")
    assert letter.next_attempt_at >= before + timedelta(seconds=settings.retry_base_seconds)
    assert any("protocol error on our side" in r.getMessage() for r in caplog.records)
    # Never failed for it, however many attempts it takes.
    for _ in range(settings.max_send_attempts + 1):
        deliver_letter(letter.id, replace(settings, smtp_url=smtp_sink.url))
    db.session.refresh(letter)
    assert letter.status == LetterStatus.QUEUED

    # Once the problem is fixed the next attempt sends it.
    smtp_sink.refuse_with(None)
    assert deliver_letter(letter.id, replace(settings, smtp_url=smtp_sink.url)).status == "sent"
    db.session.refresh(letter)
    assert letter.status == LetterStatus.SENT and letter.error is None


def test_a_recipient_rejection_fails_and_a_temporary_one_retries_then_gives_up(settings, smtp_sink):
    replies = {"t@ice.example": "550 5.1.1 no such user", "ana@gov.example": "451 4.3.0 later"}
    smtp_sink.refuse_with(replies.get)
    gone, busy = act(make_campaign(targets=TWO_TARGETS)).letters
    sink = replace(settings, smtp_url=smtp_sink.url)
    assert deliver_letter(gone.id, sink).status == "failed"
    db.session.refresh(gone)
    assert gone.status == LetterStatus.FAILED and "no such user" in gone.error
    assert deliver_letter(busy.id, sink).status == "deferred"
    db.session.refresh(busy)
    assert busy.status == LetterStatus.QUEUED and busy.error.startswith("temporary failure")
    assert busy.next_attempt_at > utcnow()
    retries = [deliver_letter(busy.id, sink).status for _ in range(settings.max_send_attempts - 1)]
    assert retries == ["deferred"] * (settings.max_send_attempts - 2) + ["failed"]
    db.session.refresh(busy)
    assert busy.status == LetterStatus.FAILED and busy.error.startswith("gave up after")


def test_hourly_cap_holds_letters_back_and_the_clock_sends_them_when_due(
    settings, smtp_sink, redis_conn, app
):
    from workers.letters import send_letter

    sink_settings = replace(settings, smtp_url=smtp_sink.url)
    campaign = make_campaign()
    letters = [act(campaign, f"p{n}@example.org").letters[0].id for n in range(3)]
    assert deliver_letter(letters[0], sink_settings, cap=2).status == "sent"
    assert deliver_letter(letters[1], sink_settings, cap=2).status == "sent"
    waiting = deliver_letter(letters[2], sink_settings, cap=2)
    assert waiting.status == "wait" and 3500 <= waiting.wait_seconds <= 3601
    assert len(smtp_sink.messages) == 2
    held = db.session.get(Letter, letters[2])
    db.session.refresh(held)
    # The database, not RQ's scheduled registry, says when the letter is due.
    assert held.status == LetterStatus.QUEUED
    first_sent = db.session.get(Letter, letters[0]).sent_at
    assert abs(held.next_attempt_at - (first_sent + timedelta(hours=1))).total_seconds() < 5
    queue = get_queue(settings, QueueName.DEFAULT)
    assert ScheduledJobRegistry(queue=queue).get_job_ids() == []

    # Before it is due the clock leaves it; once due, it enqueues it exactly once.
    assert redrive_due_letters(settings) == 0
    due = held.next_attempt_at + timedelta(seconds=1)
    assert redrive_due_letters(settings, now=due) == 1
    # Other tests' jobs (their letters, confirmation mails) may wait in this queue: look at
    # this test's letters only.
    own_jobs = {letter_job_id(letter_id) for letter_id in letters}
    assert [j for j in queue.job_ids if j in own_jobs] == [letter_job_id(letters[2])]
    job = queue.fetch_job(letter_job_id(letters[2]))
    assert job.func_name == "workers.letters.send_letter" and job.args == [letters[2]]
    assert redrive_due_letters(settings, now=due) == 0  # its job is live
    db.session.commit()

    # An hour later the window has room again and the job sends the letter.
    for letter_id in letters[:2]:
        db.session.get(Letter, letter_id).sent_at = utcnow() - timedelta(hours=1, minutes=1)
    db.session.commit()
    app.config["CLARION"] = sink_settings
    try:
        assert send_letter(letters[2]) == "sent"
    finally:
        app.config["CLARION"] = settings
    assert len(smtp_sink.messages) == 3


def test_the_job_sends_in_process(settings, smtp_sink, app):
    from workers.letters import send_letter

    campaign = make_campaign()
    letter_id = act(campaign).letters[0].id
    app.config["CLARION"] = replace(settings, smtp_url=smtp_sink.url)
    try:
        assert send_letter(letter_id) == "sent"
    finally:
        app.config["CLARION"] = settings
    assert smtp_sink.messages[0].rcpt_tos == ["todd.lyons@ice.example"]


def test_postal_targets_are_held_and_exported(client, api_token, settings, smtp_sink):
    campaign = make_campaign(
        targets=[
            {
                "name": "Todd Lyons",
                "salutation": "Dear Acting Director Lyons",
                "email": "t@ice.example",
            },
            POSTAL,
        ]
    )
    act(campaign)
    act(campaign, "eve@example.org", first_name="=HYPERLINK(1)", last_name=None)
    held = db.session.scalars(select(Letter).where(Letter.status == LetterStatus.HELD)).all()
    assert len(held) == 2
    assert deliver_letter(held[0].id, replace(settings, smtp_url=smtp_sink.url)).status == "done"
    assert smtp_sink.messages == []

    headers = api_token("analyst")
    answer = client.get(f"/api/v1/campaigns/{campaign.id}/letters.csv", headers=headers)
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    postal = [r for r in rows if r["status"] == "held"]
    assert len(rows) == 4 and len(postal) == 2
    assert postal[0]["postal_address"].startswith("2707 Martin Luther King")
    assert postal[0]["letter"].startswith("Dear Secretary Noem,")
    assert postal[1]["supporter_name"] == "'=HYPERLINK(1)"  # no formulas in spreadsheets

    target_id = campaign.targets[1].id
    page = client.get(f"/api/v1/campaigns/{campaign.id}/targets/{target_id}/print", headers=headers)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and html.count('<article class="letter">') == 2
    assert "Secretary of Homeland Security" in html and "&#39;" not in html[:0]
    assert client.get(f"/api/v1/campaigns/{campaign.id}/letters.csv").status_code == 401
