"""The staff Mailings pages: compose, preview, test, check, send, watch, pause, resume, cancel."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace

import pytest
from rq.job import Job
from rq.serializers import JSONSerializer
from sqlalchemy import select

from app.auth.models import AuditEntry, Role
from app.campaigns.models import CampaignStatus
from app.extensions import db
from app.mailings.delivery.launch import start_mailing
from app.mailings.models import Delivery, Mailing, MailingStatus
from app.supporters.models import SubscriptionStatus, Supporter
from tests.campaigns.conftest import make_campaign
from tests.factories import make_list, make_mailing, make_supporters

BODY = (
    "<mj-section><mj-column><mj-text>\n"
    '<p>Dear {{ first_name | default("Friend") }},</p>\n'
    '<p><a href="https://example.org/report">Read the report</a></p>\n'
    "</mj-text></mj-column></mj-section>"
)


@pytest.fixture
def campaigner(staff_client):
    return staff_client(Role.CAMPAIGNER)


@pytest.fixture
def network():
    network = make_list()
    make_supporters(3, mailing_list=network)
    return network


def _form(network, **fields) -> dict:
    return {
        "name": "Release the parents",
        "subject": 'Hi {{ first_name | default("Friend") }}',
        "preheader": "",
        "from_name": "",
        "from_email": "",
        "reply_to": "",
        "layout": "",
        "body_mjml": BODY,
        "body_text": "",
        "campaign_id": "None",
        "send_rate": "",
        "include_lists": [str(network.id)],
        "action": "save",
    } | fields


def _audit(mailing_id: int) -> list[str]:
    return list(
        db.session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.subject_type == "mailing", AuditEntry.subject_id == mailing_id)
            .order_by(AuditEntry.id)
        )
    )


def _only_mailing() -> Mailing:
    return db.session.scalars(select(Mailing)).one()


def test_empty_list_offers_to_write_an_alert(campaigner):
    page = campaigner.get("/staff/mailings/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "No mailings yet" in html and "Write an alert" in html


def test_list_filters_by_status_and_pages_by_id(campaigner, network):
    drafts = [make_mailing(network, name=f"Draft {n}") for n in range(27)]
    sent = make_mailing(network, name="Old news", status=MailingStatus.CANCELLED)
    first = campaigner.get("/staff/mailings/?status=draft").get_data(as_text=True)
    assert "Draft 26" in first and "Old news" not in first
    assert 'class="badge draft"' in first
    older = re.search(r'href="([^"]*after=\d+[^"]*)"', first).group(1).replace("&amp;", "&")
    second = campaigner.get(older).get_data(as_text=True)
    assert "Draft 0" in second and "Draft 26" not in second
    assert sent.name in campaigner.get("/staff/mailings/?status=cancelled").get_data(True)
    bogus = campaigner.get("/staff/mailings/?status=nonsense&after=-1")
    assert bogus.status_code == 200
    assert "There is no status &#39;nonsense&#39;" in bogus.get_data(as_text=True)
    assert f"Draft {len(drafts) - 1}" in bogus.get_data(as_text=True)


def test_compose_with_a_hostile_merge_field_shows_the_line(campaigner, network):
    hostile = BODY.replace("first_name |", "first_name.__class__ |")
    page = campaigner.submit("/staff/mailings/new", _form(network, body_mjml=hostile))
    assert page.status_code == 422
    html = page.get_data(as_text=True)
    assert "Line 2:" in html and "attribute access (x.y) is not allowed" in html
    assert "first_name.__class__" in html  # the offending source line, escaped, beside it
    unknown = campaigner.submit(
        "/staff/mailings/new", _form(network, subject="Hi {{ frist_name }}")
    )
    assert unknown.status_code == 422
    assert "line 1: unknown merge field &#39;frist_name&#39;" in unknown.get_data(True)
    forged = campaigner.submit("/staff/mailings/new", _form(network, include_lists=["424242"]))
    assert forged.status_code == 422 and "No list with id 424242." in forged.get_data(True)
    assert db.session.scalars(select(Mailing)).all() == []


def test_editor_counts_the_audience_live_and_without_javascript(campaigner, network):
    editor = campaigner.get("/staff/mailings/new").get_data(as_text=True)
    assert 'hx-post="/staff/mailings/audience-count"' in editor
    assert 'class="code"' in editor and "{{ unsubscribe_url }}" in editor
    counted = campaigner.submit("/staff/mailings/audience-count", _form(network))
    assert counted.status_code == 200 and "<strong>3</strong> subscribed" in counted.get_data(True)
    no_js = campaigner.submit("/staff/mailings/new", _form(network, action="count"))
    assert "<strong>3</strong> subscribed" in no_js.get_data(as_text=True)
    assert db.session.scalars(select(Mailing)).all() == []  # counting saves nothing


def test_full_flow_create_preview_test_check_send(
    campaigner, network, app, settings, smtp_sink, monkeypatch, redis_conn
):
    monkeypatch.setitem(app.config, "CLARION", replace(settings, smtp_url=smtp_sink.url))
    created = campaigner.submit("/staff/mailings/new", _form(network))
    assert created.status_code == 302, created.get_data(as_text=True)[:3000]
    mailing = _only_mailing()
    base = f"/staff/mailings/{mailing.id}"
    edit_page = campaigner.get(created.headers["Location"]).get_data(as_text=True)
    assert f'src="{base}/preview"' in edit_page and "preview-frame phone" in edit_page

    preview = campaigner.get(f"{base}/preview")
    assert preview.status_code == 200 and preview.mimetype == "text/html"
    assert preview.headers["Content-Security-Policy"] == "sandbox; frame-ancestors 'self'"
    assert preview.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert "Dear Jane," in preview.get_data(as_text=True)
    person = db.session.scalars(select(Supporter).order_by(Supporter.id)).first()
    chosen = campaigner.submit(f"{base}/preview-as", {"email": person.email})
    assert f"supporter_id={person.id}" in chosen.headers["Location"]
    as_person = campaigner.get(f"{base}/preview?supporter_id={person.id}")
    assert f"Dear {person.first_name}," in as_person.get_data(as_text=True)

    tested = campaigner.submit(f"{base}/test", {"to": "a@example.org\n\nb@example.org\n"})
    assert tested.status_code == 200
    assert tested.get_data(as_text=True).count('class="badge sent"') == 2
    assert sorted(m.rcpt_tos[0] for m in smtp_sink.messages) == ["a@example.org", "b@example.org"]
    assert all(m.message["Subject"].startswith("[TEST] ") for m in smtp_sink.messages)
    bad = campaigner.submit(f"{base}/test", {"to": "not an address"})
    assert bad.status_code == 422 and "not a usable email address" in bad.get_data(True)

    check = campaigner.get(f"{base}/check").get_data(as_text=True)
    assert "Send to 3 supporters" in check
    assert "https://example.org/report" in check
    spam = "Score " if shutil.which("spamassassin") else "Not available: SpamAssassin is not"
    assert spam in check

    sent = campaigner.submit(f"{base}/send", {"at": "", "timezone": "UTC"})
    assert sent.status_code == 302
    db.session.refresh(mailing)
    assert mailing.status == MailingStatus.SCHEDULED
    job = Job.fetch(f"start-{mailing.id}", connection=redis_conn, serializer=JSONSerializer)
    assert job.args == [mailing.id]
    assert start_mailing(mailing.id, app.config["CLARION"])  # what the worker would do
    db.session.refresh(mailing)
    assert mailing.status == MailingStatus.SENDING and mailing.total_recipients == 3

    page = campaigner.get(base).get_data(as_text=True)
    assert 'hx-trigger="every 2s"' in page and '<progress id="progress-bar" max="3"' in page
    fragment = campaigner.get(f"{base}/progress").get_data(as_text=True)
    assert "0 of 3 done" in fragment
    assert _audit(mailing.id) == ["test_sent", "mailing_sent"]


def test_scheduling_later_and_pause_resume_cancel(campaigner, network, redis_conn):
    mailing = make_mailing(network)
    base = f"/staff/mailings/{mailing.id}"
    naive_zone = campaigner.submit(f"{base}/send", {"at": "2099-01-01T09:00", "timezone": "Mars"})
    assert naive_zone.status_code == 422
    scheduled = campaigner.submit(
        f"{base}/send", {"at": "2099-01-01T09:00", "timezone": "Europe/Berlin"}
    )
    assert scheduled.status_code == 302
    db.session.refresh(mailing)
    assert mailing.status == MailingStatus.SCHEDULED
    assert mailing.scheduled_at.isoformat() == "2099-01-01T08:00:00+00:00"

    assert campaigner.submit(f"{base}/pause").status_code == 302
    db.session.refresh(mailing)
    assert mailing.status == MailingStatus.PAUSED
    paused_page = campaigner.get(base).get_data(as_text=True)
    assert "Resume sending" in paused_page and "Pause sending" not in paused_page
    assert campaigner.submit(f"{base}/resume").status_code == 302
    db.session.refresh(mailing)
    assert mailing.status == MailingStatus.SCHEDULED
    assert 'data-confirm="Cancel this mailing?' in campaigner.get(base).get_data(True)
    assert campaigner.submit(f"{base}/cancel").status_code == 302
    db.session.refresh(mailing)
    assert mailing.status == MailingStatus.CANCELLED
    refused = campaigner.submit(f"{base}/pause", follow_redirects=True)
    assert "A cancelled mailing cannot be paused." in refused.get_data(as_text=True)
    assert _audit(mailing.id) == [
        "mailing_scheduled",
        "mailing_paused",
        "mailing_resumed",
        "mailing_cancelled",
    ]
    history = campaigner.get(base).get_data(as_text=True)
    assert "mailing_cancelled" in history and campaigner.user.email in history
    assert "every 2s" not in history  # nothing left to watch: the polling stops


def test_send_into_a_closed_campaign_says_why(campaigner, network):
    campaign = make_campaign(status=CampaignStatus.CLOSED)
    mailing = make_mailing(network, campaign_id=campaign.id)
    base = f"/staff/mailings/{mailing.id}"
    check = campaigner.get(f"{base}/check").get_data(as_text=True)
    assert "is closed: reopen it" in check and "Send to 3" not in check
    refused = campaigner.submit(f"{base}/send", {"at": "", "timezone": "UTC"})
    assert refused.status_code == 409
    assert "Not sent:" in refused.get_data(as_text=True)
    db.session.refresh(mailing)
    assert mailing.status == MailingStatus.DRAFT


def test_pre_send_check_counts_the_suppressed(campaigner, network):
    ids = make_supporters(2, mailing_list=network, prefix="gone")
    db.session.get(Supporter, ids[0]).status = SubscriptionStatus.UNSUBSCRIBED
    db.session.get(Supporter, ids[1]).status = SubscriptionStatus.BOUNCED
    db.session.flush()
    mailing = make_mailing(network)
    check = campaigner.get(f"/staff/mailings/{mailing.id}/check").get_data(as_text=True)
    assert "2 matched but not mailed: 1 bounced, 1 unsubscribed" in check
    assert "Send to 3 supporters" in check
    assert "Present in the HTML and text parts" in check


def test_analyst_reads_but_cannot_send(staff_client, network):
    analyst = staff_client(Role.ANALYST)
    mailing = make_mailing(network)
    base = f"/staff/mailings/{mailing.id}"
    page = analyst.get(base)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Send test" not in html and "Edit draft" not in html
    check = analyst.get(f"{base}/check").get_data(as_text=True)
    assert "Send to" not in check and "3</strong> subscribed" in check
    assert "Write an alert" not in analyst.get("/staff/mailings/").get_data(as_text=True)
    assert analyst.get("/staff/mailings/new").status_code == 403
    for action in ("send", "test", "pause", "resume", "cancel", "edit"):
        assert analyst.submit(f"{base}/{action}", {"to": "a@example.org"}).status_code == 403
    db.session.refresh(mailing)
    assert mailing.status == MailingStatus.DRAFT
    assert not db.session.scalars(select(Delivery)).all()


def test_bad_ids_are_404_and_sent_mailings_are_not_edited(campaigner, network):
    assert campaigner.get("/staff/mailings/999999").status_code == 404
    assert campaigner.get("/staff/mailings/999999/preview").status_code == 404
    mailing = make_mailing(network, status=MailingStatus.CANCELLED)
    check = campaigner.get(f"/staff/mailings/{mailing.id}/check")
    assert check.status_code == 200 and "only a draft is checked" in check.get_data(True)
    edit = campaigner.get(f"/staff/mailings/{mailing.id}/edit")
    assert edit.status_code == 302
    forged = campaigner.submit(f"/staff/mailings/{mailing.id}/edit", _form(network))
    assert forged.status_code == 302
    db.session.refresh(mailing)
    assert mailing.name == "28 children alert"


def test_live_count_reports_a_forged_audience_next_to_it(campaigner, network):
    forged = campaigner.submit(
        "/staff/mailings/audience-count", _form(network, include_lists=["x"], subject="")
    )
    assert forged.status_code == 200
    assert 'class="error"' in forged.get_data(as_text=True)
    segment = campaigner.submit(
        "/staff/mailings/audience-count", _form(network, segments=["424242"])
    )
    assert "segment that does not exist" in segment.get_data(as_text=True)


def test_the_mailing_page_says_when_it_is_scheduled_for_only_while_it_waits(
    campaigner, network, redis_conn
):
    mailing = make_mailing(network)
    base = f"/staff/mailings/{mailing.id}"
    campaigner.submit(f"{base}/send", {"at": "2099-01-01T09:00", "timezone": "UTC"})
    assert "Scheduled for" in campaigner.get(base).get_data(as_text=True)
    assert campaigner.submit(f"{base}/cancel").status_code == 302
    page = campaigner.get(base).get_data(as_text=True)
    assert "Scheduled for" not in page and "Finished" in page
