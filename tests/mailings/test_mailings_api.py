"""The mailings API: compose, preview, test send, send, pause/resume/cancel and status."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from rq.job import Job
from rq.serializers import JSONSerializer
from sqlalchemy import func, select

from app.campaigns.models import CampaignStatus
from app.db import utcnow
from app.extensions import db
from app.mailings.models import Delivery, Mailing, MailingLink, MailingStatus
from app.supporters.models import Supporter
from tests.factories import make_list, make_mailing, make_supporters

BODY = (
    '<mj-section><mj-column><mj-text><p>Dear {{ first_name | default("Friend") }},</p>'
    '<p><a href="https://example.org/report">Read</a></p></mj-text></mj-column></mj-section>'
)


@pytest.fixture
def headers(api_token):
    return api_token("campaigner")


@pytest.fixture
def audience():
    network = make_list()
    make_supporters(3, mailing_list=network)
    return network


def _create(client, headers, **fields):
    body = {"name": "Alert", "subject": "Hi {{ first_name }}", "body_mjml": BODY} | fields
    return client.post("/api/v1/mailings", json=body, headers=headers)


def test_roles(client, api_token):
    analyst, campaigner = api_token("analyst"), api_token("campaigner")
    mailing = make_mailing()
    assert client.get("/api/v1/mailings").status_code == 401
    assert client.get("/api/v1/mailings", headers=analyst).status_code == 200
    assert client.get(f"/api/v1/mailings/{mailing.id}/preview", headers=analyst).status_code == 200
    assert client.get(f"/api/v1/mailings/{mailing.id}/status", headers=analyst).status_code == 200
    for method, path in (
        ("post", ""),
        ("patch", f"/{mailing.id}"),
        ("delete", f"/{mailing.id}"),
        ("post", f"/{mailing.id}/send"),
        ("post", f"/{mailing.id}/test"),
        ("post", f"/{mailing.id}/pause"),
    ):
        response = getattr(client, method)(f"/api/v1/mailings{path}", json={}, headers=analyst)
        assert response.status_code == 403, (method, path)
        assert response.json["error"]["code"] == "forbidden"
    assert _create(client, campaigner).status_code == 201


def test_create_get_list_and_delete_a_draft(client, headers, audience):
    created = _create(client, headers, audience={"include_lists": [audience.id]})
    assert created.status_code == 201
    body = created.json
    assert body["status"] == "draft" and body["audience"] == {"include_lists": [audience.id]}
    assert body["frozen_at"] is None and body["links"] == []

    fetched = client.get(f"/api/v1/mailings/{body['id']}", headers=headers)
    assert fetched.json["subject"] == "Hi {{ first_name }}"
    listed = client.get("/api/v1/mailings?status=draft", headers=headers).json
    assert [m["id"] for m in listed["items"]] == [body["id"]]
    assert listed["pagination"]["total"] == 1
    assert client.get("/api/v1/mailings?status=sent", headers=headers).json["items"] == []
    assert client.get("/api/v1/mailings?status=bogus", headers=headers).status_code == 422

    assert client.delete(f"/api/v1/mailings/{body['id']}", headers=headers).status_code == 204
    assert client.get(f"/api/v1/mailings/{body['id']}", headers=headers).status_code == 404


def test_invalid_mailing_is_422_with_field_details(client, headers):
    response = _create(client, headers, subject="Hi {{ frist_name }}", layout="nope")
    assert response.status_code == 422
    error = response.json["error"]
    assert error["code"] == "validation_error"
    assert error["details"]["subject"] == ["line 1: unknown merge field 'frist_name'"]
    assert "Unknown layout 'nope'" in error["details"]["layout"][0]
    missing = client.post("/api/v1/mailings", json={"name": "x"}, headers=headers)
    assert missing.status_code == 422 and "subject" in missing.json["error"]["details"]
    assert not db.session.scalar(select(func.count()).select_from(Mailing))


def test_patch_validates_and_only_drafts_change(client, headers, audience, settings):
    mailing = make_mailing(audience)
    url = f"/api/v1/mailings/{mailing.id}"
    bad = client.patch(url, json={"audience": {"include_lists": [424242]}}, headers=headers)
    assert bad.status_code == 422
    assert bad.json["error"]["details"] == {
        "audience": {"include_lists": ["No list with id 424242."]}
    }
    ok = client.patch(url, json={"name": "Renamed", "send_rate": 5}, headers=headers)
    assert ok.status_code == 200 and ok.json["name"] == "Renamed" and ok.json["send_rate"] == 5

    assert client.post(f"{url}/send", json={}, headers=headers).status_code == 202
    refused = client.patch(url, json={"name": "Again"}, headers=headers)
    assert refused.status_code == 409 and refused.json["error"]["code"] == "conflict"
    assert client.delete(url, headers=headers).status_code == 409
    assert client.get(url, headers=headers).json["name"] == "Renamed"


def test_preview_formats_and_escaping(client, headers):
    supporter = Supporter(email="evil@example.org", first_name="<script>")
    db.session.add(supporter)
    db.session.flush()
    mailing = make_mailing()
    url = f"/api/v1/mailings/{mailing.id}/preview"

    as_json = client.get(f"{url}?supporter_id={supporter.id}", headers=headers)
    assert as_json.status_code == 200
    assert set(as_json.json) == {"subject", "html", "text"}
    assert as_json.json["subject"].startswith("<script>, 28 children")

    page = client.get(f"{url}?supporter_id={supporter.id}&format=html", headers=headers)
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert page.headers["Content-Security-Policy"] == "sandbox"
    assert "&lt;script&gt;, we have just learned" in page.get_data(as_text=True)
    assert "<script>" not in page.get_data(as_text=True)

    text = client.get(f"{url}?format=text", headers=headers)
    assert text.mimetype == "text/plain" and "Jane, we have just learned" in text.get_data(True)
    assert client.get(f"{url}?supporter_id=999999", headers=headers).status_code == 404
    assert client.get(f"{url}?format=pdf", headers=headers).status_code == 422
    assert db.session.get(Mailing, mailing.id).frozen_at is None


def test_api_test_send(client, headers, app, settings, smtp_sink, monkeypatch):
    monkeypatch.setitem(app.config, "CLARION", replace(settings, smtp_url=smtp_sink.url))
    mailing = make_mailing()
    url = f"/api/v1/mailings/{mailing.id}/test"
    response = client.post(url, json={"to": ["a@example.org", "b@example.org"]}, headers=headers)
    assert response.status_code == 200
    assert response.json["sent"] == 2 and response.json["failed"] == 0
    assert all(m.message["Subject"].startswith("[TEST] ") for m in smtp_sink.messages)
    assert not db.session.scalar(select(func.count()).select_from(Delivery))

    too_many = client.post(
        url, json={"to": [f"x{n}@example.org" for n in range(21)]}, headers=headers
    )
    assert too_many.status_code == 422 and "to" in too_many.json["error"]["details"]
    bad = client.post(url, json={"to": ["nope"]}, headers=headers)
    assert bad.status_code == 422
    assert len(smtp_sink.messages) == 2


def test_send_freezes_schedules_and_enqueues_the_start(client, headers, audience, redis_conn):
    mailing = make_mailing(audience, layout=None, body_mjml=BODY)
    response = client.post(f"/api/v1/mailings/{mailing.id}/send", json={}, headers=headers)
    assert response.status_code == 202
    assert response.json["status"] == "scheduled" and response.json["scheduled_at"]
    stored = db.session.get(Mailing, mailing.id)
    db.session.refresh(stored)
    assert stored.status == MailingStatus.SCHEDULED
    assert "{{ unsubscribe_url }}" in stored.frozen_html and stored.frozen_subject
    links = db.session.scalars(
        select(MailingLink).where(MailingLink.mailing_id == mailing.id).order_by("position")
    )
    assert [(link.position, link.url) for link in links if not link.is_honeypot] == [
        (1, "https://example.org/report")
    ]
    assert [link["position"] for link in response.json["links"]] == [0, 1]

    job = Job.fetch(f"start-{mailing.id}", connection=redis_conn, serializer=JSONSerializer)
    assert job.func_name == "workers.jobs.start_mailing" and job.args == [mailing.id]

    again = client.post(f"/api/v1/mailings/{mailing.id}/send", json={}, headers=headers)
    assert again.status_code == 409


def test_send_at_a_later_time(client, headers, audience, redis_conn):
    mailing = make_mailing(audience)
    url = f"/api/v1/mailings/{mailing.id}/send"
    naive = client.post(url, json={"at": "2030-01-01T09:00:00"}, headers=headers)
    assert naive.status_code == 422 and "at" in naive.json["error"]["details"]
    at = datetime.now(UTC) + timedelta(hours=2)
    response = client.post(url, json={"at": at.isoformat()}, headers=headers)
    assert response.status_code == 202
    assert abs(datetime.fromisoformat(response.json["scheduled_at"]) - at) < timedelta(seconds=1)
    job = Job.fetch(f"start-{mailing.id}", connection=redis_conn, serializer=JSONSerializer)
    assert job.get_status() == "scheduled"


def test_send_refuses_an_empty_audience_and_bad_templates(client, headers, audience):
    empty = make_mailing(make_list("Nobody here"))
    response = client.post(f"/api/v1/mailings/{empty.id}/send", json={}, headers=headers)
    assert response.status_code == 422
    assert response.json["error"]["details"] == {"audience": ["The audience is empty."]}

    # A merge field that was valid when saved but whose custom field no longer exists.
    broken = make_mailing(audience, subject="{{ town }}")
    response = client.post(f"/api/v1/mailings/{broken.id}/send", json={}, headers=headers)
    assert response.status_code == 422 and "town" in response.json["error"]["message"]
    assert db.session.get(Mailing, broken.id).status == MailingStatus.DRAFT


def test_pause_resume_cancel_and_status(client, headers, audience, redis_conn):
    mailing = make_mailing(audience)
    base = f"/api/v1/mailings/{mailing.id}"
    assert client.post(f"{base}/pause", headers=headers).status_code == 409  # still a draft
    assert client.post(f"{base}/send", json={}, headers=headers).status_code == 202

    paused = client.post(f"{base}/pause", headers=headers)
    assert paused.status_code == 200 and paused.json["status"] == "paused"
    assert paused.json["status_reason"].startswith("Paused by token:test-campaigner")
    assert client.post(f"{base}/pause", headers=headers).status_code == 409
    resumed = client.post(f"{base}/resume", headers=headers)
    assert resumed.json["status"] == "scheduled"  # paused before it started
    assert client.post(f"{base}/resume", headers=headers).status_code == 409

    status = client.get(f"{base}/status", headers=headers).json
    assert set(status) == {
        "id",
        "status",
        "reason",
        "total",
        "counts",
        "done",
        "rate_per_second",
        "eta_seconds",
        "scheduled_at",
        "started_at",
        "finished_at",
    }
    assert status["status"] == "scheduled" and status["counts"]["sent"] == 0
    assert status["scheduled_at"] and status["started_at"] is None

    cancelled = client.post(f"{base}/cancel", headers=headers)
    assert cancelled.json["status"] == "cancelled" and cancelled.json["finished_at"]
    for action in ("pause", "resume", "cancel"):
        response = client.post(f"{base}/{action}", headers=headers)
        assert response.status_code == 409, action
        assert "cancelled" in response.json["error"]["message"]


def test_unknown_mailing_is_404(client, headers):
    for method, path in (("get", ""), ("post", "/send"), ("post", "/cancel"), ("get", "/status")):
        response = getattr(client, method)(f"/api/v1/mailings/999999{path}", headers=headers)
        assert response.status_code == 404, path
        assert response.json["error"]["code"] == "not_found"


# --- the campaign a mailing drives -----------------------------------------------------------


def test_campaign_id_links_unlinks_and_is_checked(client, headers, audience):
    from tests.factories import make_campaign

    campaign = make_campaign(status=CampaignStatus.DRAFT)  # linking a draft is fine
    created = _create(client, headers, campaign_id=campaign.id)
    assert created.status_code == 201, created.json
    assert created.json["campaign_id"] == campaign.id
    url = f"/api/v1/mailings/{created.json['id']}"

    for bad in (424242, 0, 2**70, "3", 1.5):
        response = client.patch(url, json={"campaign_id": bad}, headers=headers)
        assert response.status_code == 422, bad
        assert response.json["error"]["code"] == "validation_error"
        assert "campaign_id" in response.json["error"]["details"], bad
    unknown = _create(client, headers, campaign_id=424242)
    assert unknown.status_code == 422
    assert unknown.json["error"]["details"] == {"campaign_id": ["No campaign with id 424242."]}

    unlinked = client.patch(url, json={"campaign_id": None}, headers=headers)
    assert unlinked.status_code == 200 and unlinked.json["campaign_id"] is None
    other = make_campaign(slug="another-campaign")
    relinked = client.patch(url, json={"campaign_id": other.id}, headers=headers)
    assert relinked.status_code == 200 and relinked.json["campaign_id"] == other.id

    # A deleted campaign is refused like an unknown one.
    assert client.delete(f"/api/v1/campaigns/{campaign.id}", headers=headers).status_code == 204
    gone = client.patch(url, json={"campaign_id": campaign.id}, headers=headers)
    assert gone.status_code == 422 and "campaign_id" in gone.json["error"]["details"]

    # Like every other field, only while the mailing is a draft.
    client.patch(url, json={"audience": {"include_lists": [audience.id]}}, headers=headers)
    assert client.post(f"{url}/send", json={}, headers=headers).status_code == 202
    frozen = client.patch(url, json={"campaign_id": None}, headers=headers)
    assert frozen.status_code == 409
    assert client.get(url, headers=headers).json["campaign_id"] == other.id


@pytest.mark.parametrize("state", ["draft", "closed", "past_deadline", "deleted"])
@pytest.mark.parametrize("later", [False, True])
def test_send_refuses_a_campaign_that_is_not_open(client, headers, audience, state, later):
    from tests.factories import make_campaign

    campaign = make_campaign(
        status=CampaignStatus.CLOSED if state == "closed" else CampaignStatus.DRAFT
    )
    if state == "past_deadline":
        campaign.status = CampaignStatus.OPEN
        campaign.deadline = utcnow() - timedelta(minutes=1)
    campaign_id = campaign.id
    mailing = make_mailing(audience, campaign_id=campaign_id)
    if state == "deleted":
        db.session.delete(campaign)
    db.session.flush()
    body = {"at": (datetime.now(UTC) + timedelta(hours=2)).isoformat()} if later else {}

    response = client.post(f"/api/v1/mailings/{mailing.id}/send", json=body, headers=headers)
    assert response.status_code == 409
    error = response.json["error"]
    assert error["code"] == "campaign_not_open"
    assert error["details"]["campaign_id"] == campaign_id
    assert f"Campaign {campaign_id}" in error["message"]
    expected = {
        "draft": ('"Reunite a family seeking safety" is a draft: open it before sending '
                  f'(PATCH /api/v1/campaigns/{campaign_id} {{"status": "open"}})'),
        "closed": "is closed: reopen it",
        "past_deadline": "passed its deadline",
        "deleted": "no longer exists",
    }[state]  # fmt: skip
    assert expected in error["message"]
    stored = db.session.get(Mailing, mailing.id)
    db.session.refresh(stored)
    assert stored.status == MailingStatus.DRAFT and stored.frozen_at is None


def test_send_goes_ahead_once_the_campaign_is_open(client, headers, audience, redis_conn):
    from tests.factories import make_campaign

    campaign = make_campaign(status=CampaignStatus.DRAFT)
    mailing = make_mailing(audience, campaign_id=campaign.id)
    url = f"/api/v1/mailings/{mailing.id}/send"
    assert client.post(url, json={}, headers=headers).status_code == 409
    opened = client.patch(
        f"/api/v1/campaigns/{campaign.id}", json={"status": "open"}, headers=headers
    )
    assert opened.status_code == 200
    assert client.post(url, json={}, headers=headers).status_code == 202


def test_closing_a_campaign_pauses_its_scheduled_mailing_and_resume_waits(
    client, headers, audience, redis_conn
):
    from tests.factories import make_campaign

    campaign = make_campaign()
    mailing = make_mailing(audience, campaign_id=campaign.id)
    url = f"/api/v1/mailings/{mailing.id}"
    at = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    assert client.post(f"{url}/send", json={"at": at}, headers=headers).status_code == 202

    closed = client.patch(
        f"/api/v1/campaigns/{campaign.id}", json={"status": "closed"}, headers=headers
    )
    assert closed.status_code == 200
    shown = client.get(url, headers=headers).json
    assert shown["status"] == "paused"
    assert shown["status_reason"].startswith(f'Not started: Campaign {campaign.id} "Reunite')
    assert "is closed" in shown["status_reason"]
    assert "is closed" in client.get(f"{url}/status", headers=headers).json["reason"]

    refused = client.post(f"{url}/resume", headers=headers)
    assert refused.status_code == 409
    assert refused.json["error"]["code"] == "campaign_not_open"
    assert "is closed" in refused.json["error"]["message"]
    client.patch(f"/api/v1/campaigns/{campaign.id}", json={"status": "open"}, headers=headers)
    resumed = client.post(f"{url}/resume", headers=headers)
    assert resumed.status_code == 200 and resumed.json["status"] == "scheduled"
