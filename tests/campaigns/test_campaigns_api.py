"""The staff API: campaigners write campaigns with targets, analysts read actions and letters."""

from __future__ import annotations

from app.campaigns.services import record_action
from app.extensions import db
from tests.factories import make_campaign, make_supporter

BODY = {
    "title": "Stop illegal expulsions to El Salvador",
    "slug": "stop-expulsions",
    "reference": "UA 034/25",
    "summary": "<p>255 people <em>expelled</em>.</p><img src=x onerror=alert(1)>",
    "kind": "letter",
    "deadline_date": "2031-07-01",
    "timezone": "America/New_York",
    "letter_subject": "Return those expelled",
    "letter_body": "{salutation},\n\nPlease act.\n\n{supporter_name}\n{supporter_town}",
    "status": "open",
    "targets": [
        {
            "name": "Kristi Noem",
            "title": "Secretary of Homeland Security",
            "salutation": "Dear Secretary Noem",
            "postal_address": "2707 Martin Luther King Jr. Avenue, SE\nWashington, DC 20528",
        }
    ],
}


def test_campaigner_creates_and_analyst_reads(client, api_token):
    created = client.post("/api/v1/campaigns", json=BODY, headers=api_token("campaigner"))
    assert created.status_code == 201, created.json
    data = created.json
    # The end of 1 July in New York is 03:59:59 UTC on 2 July.
    assert data["deadline"].startswith("2031-07-02T03:59:59")
    assert data["targets"][0]["salutation"] == "Dear Secretary Noem"
    assert data["is_open"] is True and data["public_url"] == "/campaigns/stop-expulsions"

    analyst = api_token("analyst")
    assert (
        client.get(f"/api/v1/campaigns/{data['id']}", headers=analyst).json["slug"]
        == "stop-expulsions"
    )
    assert client.get("/api/v1/campaigns", headers=analyst).json["pagination"]["total"] == 1
    refused = client.patch(
        f"/api/v1/campaigns/{data['id']}", json={"status": "closed"}, headers=analyst
    )
    assert refused.status_code == 403

    patched = client.patch(
        f"/api/v1/campaigns/{data['id']}",
        json={"status": "closed"},
        headers=api_token("campaigner"),
    )
    assert patched.json["status"] == "closed" and patched.json["is_open"] is False


def test_bad_input_is_a_clear_error(client, api_token):
    headers = api_token("campaigner")
    bad_zone = client.post(
        "/api/v1/campaigns", json={**BODY, "timezone": "Mars/Olympus"}, headers=headers
    )
    assert bad_zone.status_code == 422 and "timezone" in bad_zone.json["error"]["details"]
    no_url = client.post(
        "/api/v1/campaigns", json={**BODY, "kind": "click", "slug": "c"}, headers=headers
    )
    assert no_url.status_code == 422 and "external_url" in no_url.json["error"]["details"]
    assert client.post("/api/v1/campaigns", json=BODY, headers=headers).status_code == 201
    dup = client.post("/api/v1/campaigns", json=BODY, headers=headers)
    assert dup.status_code == 409
    bad_slug = client.post(
        "/api/v1/campaigns", json={**BODY, "slug": "Not A Slug"}, headers=headers
    )
    assert bad_slug.status_code == 422


def test_actions_and_letters_with_delivery_state(client, api_token):
    campaign = make_campaign()
    for n in range(3):
        record_action(campaign, make_supporter(f"p{n}@example.org"), channel="public")
    db.session.commit()
    headers = api_token("analyst")
    actions = client.get(
        f"/api/v1/campaigns/{campaign.id}/actions?page_size=2", headers=headers
    ).json
    assert actions["pagination"]["total"] == 3 and len(actions["items"]) == 2
    letters = client.get(f"/api/v1/campaigns/{campaign.id}/letters", headers=headers).json
    assert [item["status"] for item in letters["items"]] == ["queued"] * 3
    assert client.get("/api/v1/campaigns/999/letters", headers=headers).status_code == 404


def test_targets_cannot_be_replaced_after_actions(client, api_token):
    campaign = make_campaign()
    record_action(campaign, make_supporter(), channel="public")
    db.session.commit()
    answer = client.patch(
        f"/api/v1/campaigns/{campaign.id}",
        json={"targets": [{"name": "X", "salutation": "Dear X"}]},
        headers=api_token("campaigner"),
    )
    assert answer.status_code == 409


def test_a_new_campaign_starts_as_a_draft_and_a_mailing_waits_for_it(client, api_token):
    from datetime import UTC, datetime, timedelta

    from app.mailings.models import Mailing, MailingStatus
    from tests.factories import make_list, make_mailing, make_supporters

    headers = api_token("campaigner")
    draft = client.post(
        "/api/v1/campaigns", json={k: v for k, v in BODY.items() if k != "status"}, headers=headers
    ).json
    assert draft["status"] == "draft" and draft["is_open"] is False
    assert client.get("/campaigns/stop-expulsions").status_code == 404  # invisible to the public

    audience = make_list()
    make_supporters(2, mailing_list=audience)
    mailing = make_mailing(audience, campaign_id=draft["id"])
    send = f"/api/v1/mailings/{mailing.id}/send"
    refused = client.post(send, json={}, headers=headers)
    assert refused.status_code == 409 and refused.json["error"]["code"] == "campaign_not_open"
    campaign_url = f"/api/v1/campaigns/{draft['id']}"
    assert client.patch(campaign_url, json={"status": "open"}, headers=headers).status_code == 200
    at = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert client.post(send, json={"at": at}, headers=headers).status_code == 202

    # Editing an open campaign leaves its scheduled mailing alone; closing it pauses it.
    client.patch(campaign_url, json={"reference": "UA 034/25 (update)"}, headers=headers)
    assert db.session.get(Mailing, mailing.id).status == MailingStatus.SCHEDULED
    client.patch(campaign_url, json={"status": "draft"}, headers=headers)
    stored = db.session.get(Mailing, mailing.id)
    db.session.refresh(stored)
    assert stored.status == MailingStatus.PAUSED and "is a draft" in stored.status_reason
