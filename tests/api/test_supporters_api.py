"""Supporters API: create-or-update, status rules, search, history, GDPR erase and export."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.extensions import db
from app.mailings.models import BounceEvent, BounceKind, Delivery, Mailing
from app.supporters.emails import email_hash
from app.supporters.models import (
    ErasedEmail,
    MailingList,
    SubscriptionChange,
    SubscriptionStatus,
    Supporter,
)
from tests.api.test_api_base import assert_error

URL = "/api/v1/supporters"


@pytest.fixture
def headers(api_token):
    return api_token("campaigner")


@pytest.fixture
def admin(api_token):
    return api_token("admin")


def test_create_normalises_email_and_records_consent_history(client, headers):
    response = client.post(
        URL,
        json={"email": "  Ana@Example.ORG ", "first_name": "Ana", "country": "gb"},
        headers=headers,
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body["email"] == "ana@example.org"
    assert body["status"] == "subscribed" and body["country"] == "GB"
    history = client.get(f"{URL}/{body['id']}/history", headers=headers).get_json()
    assert [(h["old_status"], h["new_status"], h["channel"]) for h in history] == [
        (None, "subscribed", "api")
    ]
    assert history[0]["actor"] == "token:test-campaigner"


def test_second_call_updates_the_same_supporter(client, headers):
    first = client.put(URL, json={"email": "b@example.org", "first_name": "B"}, headers=headers)
    second = client.put(
        URL,
        json={"email": "B@example.org", "last_name": "Bee", "custom_fields": {"ward": "North"}},
        headers=headers,
    )
    assert (first.status_code, second.status_code) == (201, 200)
    body = second.get_json()
    assert body["id"] == first.get_json()["id"]
    assert (body["first_name"], body["last_name"]) == ("B", "Bee")
    assert body["custom_fields"] == {"ward": "North"}
    third = client.put(
        URL,
        json={"email": "b@example.org", "custom_fields": {"ward": None, "age": 40}},
        headers=headers,
    )
    assert third.get_json()["custom_fields"] == {"age": 40}


def test_invalid_email_is_422(client, headers):
    response = client.post(URL, json={"email": "not-an-address"}, headers=headers)
    assert "email" in assert_error(response, 422, "validation_error")["details"]


def test_upsert_never_resubscribes_and_needs_consent_to(client, headers):
    created = client.post(URL, json={"email": "u@example.org"}, headers=headers).get_json()
    unsub = client.patch(f"{URL}/{created['id']}", json={"status": "unsubscribed"}, headers=headers)
    assert unsub.get_json()["status"] == "unsubscribed"

    again = client.post(URL, json={"email": "u@example.org", "first_name": "U"}, headers=headers)
    assert again.status_code == 200 and again.get_json()["status"] == "unsubscribed"

    refused = client.post(
        URL, json={"email": "u@example.org", "status": "subscribed"}, headers=headers
    )
    assert_error(refused, 409, "resubscribe_requires_consent")
    refused = client.patch(f"{URL}/{created['id']}", json={"status": "subscribed"}, headers=headers)
    assert_error(refused, 409, "resubscribe_requires_consent")
    assert db.session.get(Supporter, created["id"]).status == SubscriptionStatus.UNSUBSCRIBED

    consent = {"channel": "web_form", "detail": "https://example.org/join at 2025-01-01"}
    ok = client.post(
        URL,
        json={"email": "u@example.org", "status": "subscribed", "consent": consent},
        headers=headers,
    )
    assert ok.status_code == 200 and ok.get_json()["status"] == "subscribed"
    history = client.get(f"{URL}/{created['id']}/history", headers=headers).get_json()
    assert [(h["new_status"], h["channel"]) for h in history] == [
        ("subscribed", "api"),
        ("unsubscribed", "api"),
        ("subscribed", "web_form"),
    ]
    assert history[-1]["detail"] == consent["detail"]


def test_consent_needs_a_channel(client, headers):
    response = client.post(
        URL, json={"email": "x@example.org", "consent": {"detail": "x"}}, headers=headers
    )
    assert "consent" in assert_error(response, 422)["details"]


def test_lists_must_exist_and_tags_are_created(client, headers):
    db.session.add(MailingList(name="Newsletter"))
    db.session.flush()
    response = client.post(
        URL,
        json={"email": "t@example.org", "lists": ["Newsletter"], "tags": ["donor", "vip"]},
        headers=headers,
    )
    assert response.status_code == 201
    assert response.get_json()["lists"] == ["Newsletter"]
    assert response.get_json()["tags"] == ["donor", "vip"]
    missing = client.post(URL, json={"email": "t2@example.org", "lists": ["Nope"]}, headers=headers)
    assert "lists" in assert_error(missing, 422)["details"]
    assert db.session.scalar(select(Supporter).where(Supporter.email == "t2@example.org")) is None


def test_patch_email_to_a_taken_address_is_409(client, headers):
    client.post(URL, json={"email": "one@example.org"}, headers=headers)
    two = client.post(URL, json={"email": "two@example.org"}, headers=headers).get_json()
    response = client.patch(
        f"{URL}/{two['id']}", json={"email": "ONE@example.org"}, headers=headers
    )
    assert_error(response, 409, "duplicate_email")


def test_search_filters_and_paginates(client, headers):
    db.session.add(MailingList(name="L"))
    db.session.flush()
    for i in range(7):
        client.post(
            URL,
            json={
                "email": f"s{i}@example.org",
                "lists": ["L"] if i % 2 else [],
                "tags": ["t"] if i < 3 else [],
            },
            headers=headers,
        )
    page = client.get(f"{URL}?page=2&page_size=3", headers=headers).get_json()
    assert page["pagination"] == {"page": 2, "page_size": 3, "total": 7, "pages": 3}
    assert [s["email"] for s in page["items"]] == [
        "s3@example.org",
        "s4@example.org",
        "s5@example.org",
    ]
    in_list = client.get(f"{URL}?list=L&page_size=500", headers=headers).get_json()
    assert in_list["pagination"]["total"] == 3
    both = client.get(f"{URL}?list=L&tag=t", headers=headers).get_json()
    assert [s["email"] for s in both["items"]] == ["s1@example.org"]
    by_email = client.get(f"{URL}?email=S4@Example.org", headers=headers).get_json()
    assert [s["email"] for s in by_email["items"]] == ["s4@example.org"]
    assert client.get(f"{URL}?status=bounced", headers=headers).get_json()["items"] == []
    assert_error(client.get(f"{URL}?page_size=501", headers=headers), 422)
    assert_error(client.get(f"{URL}?list=nope", headers=headers), 422)


def test_tag_and_untag_a_supporter(client, headers):
    supporter = client.post(URL, json={"email": "tag@example.org"}, headers=headers).get_json()
    tagged = client.post(
        f"{URL}/{supporter['id']}/tags", json={"tags": ["a", "b"]}, headers=headers
    )
    assert tagged.get_json()["tags"] == ["a", "b"]
    assert client.delete(f"{URL}/{supporter['id']}/tags/a", headers=headers).status_code == 204
    assert client.get(f"{URL}/{supporter['id']}", headers=headers).get_json()["tags"] == ["b"]
    assert_error(client.delete(f"{URL}/{supporter['id']}/tags/a", headers=headers), 404)


def _mailing_with_delivery(supporter_id: int) -> tuple[int, int]:
    mailing = Mailing(name="Appeal", subject="Act now")
    db.session.add(mailing)
    db.session.flush()
    delivery = Delivery(mailing_id=mailing.id, supporter_id=supporter_id, batch_no=0)
    db.session.add(delivery)
    db.session.flush()
    bounce = BounceEvent(
        kind=BounceKind.HARD, source="smtp", supporter_id=supporter_id, delivery_id=delivery.id
    )
    db.session.add(bounce)
    db.session.flush()
    return delivery.id, bounce.id


def test_erase_keeps_deliveries_and_remembers_the_opt_out(client, headers, admin):
    supporter = client.post(
        URL, json={"email": "gone@example.org", "tags": ["x"]}, headers=headers
    ).get_json()
    client.patch(f"{URL}/{supporter['id']}", json={"status": "unsubscribed"}, headers=headers)
    delivery_id, bounce_id = _mailing_with_delivery(supporter["id"])

    assert client.delete(f"{URL}/{supporter['id']}", headers=admin).status_code == 204

    db.session.expire_all()
    assert db.session.get(Supporter, supporter["id"]) is None
    assert db.session.get(Delivery, delivery_id).supporter_id is None
    assert db.session.get(BounceEvent, bounce_id).supporter_id is None
    assert (
        db.session.scalars(
            select(SubscriptionChange).where(SubscriptionChange.supporter_id == supporter["id"])
        ).all()
        == []
    )
    erased = db.session.get(ErasedEmail, email_hash("gone@example.org"))
    assert erased.status == SubscriptionStatus.UNSUBSCRIBED
    assert_error(client.get(f"{URL}/{supporter['id']}", headers=headers), 404)

    # Re-creating the address (an old export, say) does not subscribe them again…
    back = client.post(URL, json={"email": "gone@example.org"}, headers=headers)
    assert back.status_code == 201 and back.get_json()["status"] == "unsubscribed"
    # …but their own opt-in does, and the hash is no longer needed.
    client.delete(f"{URL}/{back.get_json()['id']}", headers=admin)
    consent = {"channel": "web_form", "detail": "signed petition"}
    again = client.post(
        URL,
        json={"email": "gone@example.org", "status": "subscribed", "consent": consent},
        headers=headers,
    )
    assert again.get_json()["status"] == "subscribed"
    assert db.session.get(ErasedEmail, email_hash("gone@example.org")) is None


def test_erasing_a_subscribed_supporter_keeps_no_hash(client, headers, admin):
    supporter = client.post(URL, json={"email": "fine@example.org"}, headers=headers).get_json()
    assert client.delete(f"{URL}/{supporter['id']}", headers=admin).status_code == 204
    assert db.session.get(ErasedEmail, email_hash("fine@example.org")) is None
    assert_error(client.delete(f"{URL}/{supporter['id']}", headers=admin), 404)


def test_export_holds_everything_stored(client, headers, admin):
    db.session.add(MailingList(name="News"))
    db.session.flush()
    supporter = client.post(
        URL,
        json={
            "email": "me@example.org",
            "first_name": "Me",
            "custom_fields": {"ward": "East"},
            "lists": ["News"],
            "tags": ["donor"],
        },
        headers=headers,
    ).get_json()
    _mailing_with_delivery(supporter["id"])
    export = client.get(f"{URL}/{supporter['id']}/export", headers=admin).get_json()
    assert export["supporter"]["email"] == "me@example.org"
    assert export["supporter"]["first_name"] == "Me"
    assert export["custom_fields"] == {"ward": "East"}
    assert [entry["name"] for entry in export["lists"]] == ["News"]
    assert export["tags"] == ["donor"]
    assert export["consent_history"][0]["new_status"] == "subscribed"
    assert export["deliveries"][0]["mailing_name"] == "Appeal"
    assert export["bounce_events"][0]["kind"] == "hard"
