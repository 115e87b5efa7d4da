"""Letters to targets: sent through real SMTP, capped per hour, held for the post."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import timedelta

from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from app.campaigns.letters import deliver_letter, send_or_reschedule
from app.campaigns.models import Letter, LetterStatus
from app.campaigns.services import record_action
from app.db import utcnow
from app.extensions import db
from app.queues import QueueName, get_queue
from tests.campaigns.conftest import make_campaign, make_supporter

POSTAL = {
    "name": "Kristi Noem",
    "title": "Secretary of Homeland Security",
    "organisation": "U.S. Department of Homeland Security",
    "salutation": "Dear Secretary Noem",
    "email": None,
    "postal_address": "2707 Martin Luther King Jr. Avenue, SE\nWashington, DC 20528\nUSA",
}


def act(campaign, email="jane@example.org", **data):
    supporter = make_supporter(email, **data)
    action, _ = record_action(campaign, supporter, channel="public")
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
    body = message.get_content()
    assert body.startswith("Dear Acting Director Lyons,") and "Jane Doe\nSpringfield" in body
    db.session.refresh(letter)
    assert letter.status == LetterStatus.SENT and letter.message_id == message["Message-ID"]
    # Run twice (RQ delivers at least once): nothing more is sent.
    assert deliver_letter(letter.id, replace(settings, smtp_url=smtp_sink.url)).status == "done"
    assert len(smtp_sink.messages) == 1


def test_each_target_gets_its_own_salutation(settings, smtp_sink):
    second = {
        **POSTAL,
        "name": "Ana Ruiz",
        "salutation": "Dear Ms Ruiz",
        "email": "ana@gov.example",
    }
    campaign = make_campaign(
        targets=[
            {
                "name": "Todd Lyons",
                "salutation": "Dear Acting Director Lyons",
                "email": "t@ice.example",
            },
            second,
        ]
    )
    action = act(campaign)
    for letter in action.letters:
        deliver_letter(letter.id, replace(settings, smtp_url=smtp_sink.url))
    bodies = {m.rcpt_tos[0]: m.message.get_content() for m in smtp_sink.messages}
    assert bodies["ana@gov.example"].startswith("Dear Ms Ruiz,")
    assert bodies["t@ice.example"].startswith("Dear Acting Director Lyons,")


def test_hourly_cap_holds_letters_back_and_reschedules_them(settings, smtp_sink, redis_conn):
    sink_settings = replace(settings, smtp_url=smtp_sink.url)
    campaign = make_campaign()
    letters = [act(campaign, f"p{n}@example.org").letters[0].id for n in range(3)]
    assert send_or_reschedule(letters[0], sink_settings, cap=2).status == "sent"
    assert send_or_reschedule(letters[1], sink_settings, cap=2).status == "sent"
    waiting = send_or_reschedule(letters[2], sink_settings, cap=2)
    assert waiting.status == "wait" and 3500 <= waiting.wait_seconds <= 3601
    assert len(smtp_sink.messages) == 2
    assert db.session.get(Letter, letters[2]).status == LetterStatus.QUEUED
    queue = get_queue(settings, QueueName.DEFAULT)
    registry = ScheduledJobRegistry(queue=queue)
    [job_id] = registry.get_job_ids()
    job = queue.fetch_job(job_id)
    assert job.func_name == "workers.letters.send_letter" and job.args == [letters[2]]

    # An hour later the window has room again and the letter goes.
    for letter_id in letters[:2]:
        db.session.get(Letter, letter_id).sent_at = utcnow() - timedelta(hours=1, minutes=1)
    db.session.commit()
    assert send_or_reschedule(letters[2], sink_settings, cap=2).status == "sent"
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
