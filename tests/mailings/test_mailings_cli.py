"""`clarion mailings …` through Flask's CLI runner, against the test database and SMTP sink."""

from __future__ import annotations

from dataclasses import replace

import pytest
from rq.job import Job
from rq.serializers import JSONSerializer
from sqlalchemy import func, select

from app.extensions import db
from app.mailings.models import Delivery, Mailing, MailingStatus
from tests.factories import make_list, make_mailing, make_supporters


@pytest.fixture
def run(app):
    runner = app.test_cli_runner()

    def invoke(*args):
        return runner.invoke(args=["mailings", *args])

    return invoke


def test_create_list_and_show(run):
    network = make_list()
    result = run(
        "create", "--name", "Alert", "--subject", "Hi {{ first_name }}",
        "--layout", "demo_28_children", "--list", network.name,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    mailing = db.session.scalar(select(Mailing).where(Mailing.name == "Alert"))
    assert result.output.strip() == f"Created draft mailing {mailing.id}."
    assert mailing.audience == {"include_lists": [network.id]}

    listed = run("list")
    assert f"{mailing.id:>6}  draft" in listed.output and "Alert" in listed.output
    assert "No mailings." in run("list", "--status", "sent").output
    shown = run("show", str(mailing.id))
    assert "subject:     Hi {{ first_name }}" in shown.output
    assert "from:        Clarion Alerts alerts@clarion.test" in shown.output


def test_create_reports_problems_by_field(run):
    result = run("create", "--name", "x", "--subject", "{{ nope }}", "--layout", "missing")
    assert result.exit_code == 1
    assert "subject: line 1: unknown merge field 'nope'" in result.output
    assert "layout: Unknown layout 'missing'" in result.output
    assert "No list named 'Nowhere'" in run(
        "create", "--name", "x", "--subject", "y", "--layout", "demo_28_children",
        "--list", "Nowhere",
    ).output  # fmt: skip
    assert not db.session.scalar(select(func.count()).select_from(Mailing))


def test_preview_as_a_supporter(run):
    ids = make_supporters(1)
    mailing = make_mailing()
    html = run("preview", str(mailing.id), "--supporter", "supporter0@example.org")
    assert html.exit_code == 0, html.output
    assert html.output.startswith("Subject: Name0, 28 children could be deported\n")
    assert "<!DOCTYPE html>" in html.output
    text = run("preview", str(mailing.id), "--text")
    assert "Jane, we have just learned" in text.output and "<html" not in text.output
    assert run("preview", str(mailing.id), "--supporter", "who@example.org").exit_code == 1
    assert ids and run("preview", "999999").output.strip().endswith("No mailing with id 999999.")


def test_cli_test_send(run, app, settings, smtp_sink, monkeypatch):
    monkeypatch.setitem(app.config, "CLARION", replace(settings, smtp_url=smtp_sink.url))
    smtp_sink.handler.reply_for = lambda rcpt: "550 no such user" if "bad" in rcpt else None
    mailing = make_mailing()
    result = run("test", str(mailing.id), "--to", "a@example.org", "--to", "bad@example.org")
    assert result.exit_code == 1
    assert "sent    a@example.org" in result.output
    assert "FAILED  bad@example.org: 550 no such user" in result.output
    assert [m.message["Subject"][:7] for m in smtp_sink.messages] == ["[TEST] "]
    assert not db.session.scalar(select(func.count()).select_from(Delivery))


def test_send_pause_resume_cancel_and_status(run, redis_conn):
    network = make_list()
    make_supporters(2, mailing_list=network)
    mailing = make_mailing(network)
    mid = str(mailing.id)

    naive = run("send", mid, "--at", "2030-01-01T09:00")
    assert naive.exit_code == 2 and "give a timezone" in naive.output
    sent = run("send", mid)
    assert sent.exit_code == 0, sent.output
    assert sent.output.startswith(f"Mailing {mid} scheduled for ")
    assert Job.fetch(f"start-{mid}", connection=redis_conn, serializer=JSONSerializer)
    assert "Only a draft can be sent" in run("send", mid).output

    assert run("pause", mid).output.strip() == f"Mailing {mid} is paused."
    assert "cannot be paused" in run("pause", mid).output
    assert run("resume", mid).output.strip() == f"Mailing {mid} is scheduled."
    status = run("status", mid)
    assert status.exit_code == 0
    assert status.output.startswith("scheduled: 0/0 done")
    assert run("cancel", mid).output.strip() == f"Mailing {mid} is cancelled."
    assert db.session.get(Mailing, mailing.id).status == MailingStatus.CANCELLED
    assert run("resume", mid).exit_code == 1


def test_status_watch_ends_when_the_mailing_has_stopped(run, settings, redis_conn):
    network = make_list()
    make_supporters(3, mailing_list=network)
    mailing = make_mailing(network)
    assert run("send", str(mailing.id)).exit_code == 0
    assert run("cancel", str(mailing.id)).exit_code == 0
    watched = run("status", str(mailing.id), "--watch")
    assert watched.exit_code == 0, watched.output
    assert "cancelled" in watched.output
    assert watched.output.strip().endswith(f"Mailing {mailing.id} is cancelled.")


def test_create_with_a_campaign_show_it_and_send_only_once_it_is_open(run, redis_conn):
    from app.campaigns.models import CampaignStatus
    from tests.factories import make_campaign

    network = make_list()
    make_supporters(2, mailing_list=network)
    campaign = make_campaign(status=CampaignStatus.DRAFT)
    args = ["create", "--name", "Alert", "--subject", "Hi", "--layout", "demo_28_children"]
    unknown = run(*args, "--list", network.name, "--campaign", "424242")
    assert unknown.exit_code == 1 and "campaign_id: No campaign with id 424242." in unknown.output
    created = run(*args, "--list", network.name, "--campaign", str(campaign.id))
    assert created.exit_code == 0, created.output
    mailing = db.session.scalar(select(Mailing).where(Mailing.name == "Alert"))
    assert mailing.campaign_id == campaign.id
    mid = str(mailing.id)

    shown = run("show", mid).output
    assert f'campaign:    {campaign.id} "Reunite a family seeking safety" (draft)' in shown

    refused = run("send", mid)
    assert refused.exit_code == 1
    assert f'Campaign {campaign.id} "Reunite a family seeking safety" is a draft' in refused.output
    assert "open it before sending" in refused.output
    assert run("send", mid, "--at", "2030-01-01T09:00+00:00").exit_code == 1
    assert db.session.get(Mailing, mailing.id).status == MailingStatus.DRAFT

    campaign.status = CampaignStatus.OPEN
    db.session.flush()
    assert f'{campaign.id} "Reunite a family seeking safety" (open)' in run("show", mid).output
    assert run("send", mid).exit_code == 0
