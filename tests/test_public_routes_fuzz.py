"""Hostile input on public routes and the API gets a clear 4xx, never a 500.

Probes for what once crashed (NUL in a path, bigints past PostgreSQL's range, deeply nested
JSON, oversized bodies), then a bounded property-based sweep over the public routes.
"""

from __future__ import annotations

import io
import json
from datetime import timedelta
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.campaigns.models import Campaign, CampaignKind, CampaignStatus
from app.db import utcnow
from app.extensions import db
from app.security import API_MAX_BYTES, FORM_MAX_BYTES, MAX_BIGINT

TOO_BIG = str(MAX_BIGINT + 1)


@pytest.fixture
def campaign_slug():
    db.session.add(
        Campaign(
            slug="fuzz-me",
            kind=CampaignKind.PETITION,
            status=CampaignStatus.OPEN,
            title="Fuzz me",
            timezone="UTC",
            deadline=utcnow() + timedelta(days=3),
        )
    )
    db.session.commit()
    return "fuzz-me"


def assert_error_page(response, status: int) -> str:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def assert_api_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    error = response.get_json()["error"]
    if code:
        assert error["code"] == code
    return error


# --- control characters in paths, queries and forms ------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/campaigns/%00", "/campaigns/a%00b", "/a/%00", "/u/x%01", "/p/%7f", "/v/%0a", "/c/%00/1"],
)
def test_control_characters_in_a_path_are_a_400_page(client, path):
    body = assert_error_page(client.get(path), 400)
    assert "not allowed" in body


def test_nul_in_an_api_path_is_a_json_400(client, api_token):
    assert_api_error(client.get("/api/v1/supporters/%00", headers=api_token("admin")), 400)


def test_nul_in_a_query_value_is_a_400(client, campaign_slug):
    assert_error_page(client.get(f"/campaigns/{campaign_slug}?not_me=%00"), 400)


def test_nul_in_a_public_form_is_a_400(client, campaign_slug):
    response = client.post(f"/campaigns/{campaign_slug}", data={"name": "Ann\x00", "csrf": "x"})
    assert "characters that are not allowed" in assert_error_page(response, 400)


# --- body sizes --------------------------------------------------------------------------------


def test_oversized_public_form_is_a_short_413_page(client, campaign_slug):
    field = "x" * (FORM_MAX_BYTES + 1)
    response = client.post(f"/campaigns/{campaign_slug}", data={"letter": field})
    body = assert_error_page(response, 413)
    assert len(body) < 10_000 and "xxxxxxxx" not in body


def test_oversized_one_click_unsubscribe_is_refused(client):
    response = client.post("/u/token", data={"List-Unsubscribe": "One-Click" * 10_000})
    assert_error_page(response, 413)


def test_oversized_api_json_is_a_json_413(client, api_token):
    response = client.post(
        "/api/v1/lists", json={"name": "x" * API_MAX_BYTES}, headers=api_token("admin")
    )
    assert_api_error(response, 413, "payload_too_large")


def test_the_csv_import_keeps_its_large_limit(client, api_token):
    rows = "".join(f"person{n}@example.org,Person\n" for n in range(API_MAX_BYTES // 25))
    csv = ("email,first_name\n" + rows).encode()
    assert len(csv) > API_MAX_BYTES
    response = client.post(
        "/api/v1/imports",
        data={"file": (io.BytesIO(csv), "big.csv")},
        headers=api_token("admin"),
        content_type="multipart/form-data",
    )
    assert response.status_code == 202, response.get_data(as_text=True)


# --- integers past a bigint, NUL and deep nesting in the API ----------------------------------


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/supporters/{TOO_BIG}",
        f"/api/v1/mailings/{TOO_BIG}",
        f"/api/v1/campaigns/{TOO_BIG}/letters",
        f"/api/v1/lists/1/members/{TOO_BIG}",
        "/api/v1/supporters/99999999999999999999",
    ],
)
def test_ids_past_a_bigint_are_a_json_404(client, api_token, path):
    method = "delete" if "members" in path else "get"
    response = getattr(client, method)(path, headers=api_token("admin"))
    assert_api_error(response, 404, "not_found")


def test_page_past_any_offset_is_a_validation_error(client, api_token):
    response = client.get(f"/api/v1/supporters?page={TOO_BIG}", headers=api_token("admin"))
    assert "page" in assert_api_error(response, 422, "validation_error")["details"]


@pytest.mark.parametrize("value", ["99999999999999999999", "\u00b2", "\u0663"])
def test_odd_numeric_filters_are_not_a_500(client, api_token, value):
    response = client.get(f"/api/v1/supporters?list={quote(value)}", headers=api_token("admin"))
    assert_api_error(response, 422, "validation_error")


def test_id_lists_past_a_bigint_are_a_validation_error(client, api_token):
    headers = api_token("admin")
    list_id = client.post("/api/v1/lists", json={"name": "Bigints"}, headers=headers).get_json()[
        "id"
    ]
    response = client.post(
        f"/api/v1/lists/{list_id}/members",
        json={"supporter_ids": [MAX_BIGINT + 1]},
        headers=headers,
    )
    details = assert_api_error(response, 422, "validation_error")["details"]
    assert "supporter_ids" in details


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/lists", {"name": "Nul\x00list"}, "name"),
        ("/api/v1/supporters", {"email": "nul@example.org", "first_name": "A\x00"}, "first_name"),
        ("/api/v1/tags", {"name": "\x00"}, "name"),
        ("/api/v1/mailings", {"name": "M", "subject": "S\x00"}, "subject"),
        ("/api/v1/campaigns", {"title": "T\x00", "slug": "nul-campaign"}, "title"),
    ],
)
def test_nul_in_api_text_is_a_validation_error(client, api_token, path, body, field):
    response = client.post(path, json=body, headers=api_token("admin"))
    details = assert_api_error(response, 422, "validation_error")["details"]
    assert field in details


def test_deeply_nested_api_json_is_invalid_json(client, api_token):
    body = '{"name": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = client.post(
        "/api/v1/lists",
        data=body,
        headers={**api_token("admin"), "Content-Type": "application/json"},
    )
    assert_api_error(response, 400, "invalid_json")


def test_missing_required_body_is_a_validation_error(client, api_token):
    response = client.post("/api/v1/lists", headers=api_token("admin"))
    assert_api_error(response, 422, "validation_error")


# --- a bounded sweep over the public routes ----------------------------------------------------

SWEEP = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PREFIXES = ["/campaigns/", "/a/", "/u/", "/p/", "/v/", "/o/", "/c/"]


@SWEEP
@given(prefix=st.sampled_from(PREFIXES), segment=st.text(min_size=1, max_size=40))
def test_any_path_segment_is_answered_without_a_500(client, prefix, segment):
    response = client.get(prefix + quote(segment, safe=""))
    assert response.status_code < 500


@SWEEP
@given(
    prefix=st.sampled_from(["/campaigns/fuzz-me", "/u/tok", "/p/tok", "/a/tok"]),
    form=st.dictionaries(
        st.sampled_from(["name", "email", "town", "letter", "keep", "action", "csrf", "token"]),
        st.text(max_size=60),
    ),
)
def test_any_form_is_answered_without_a_500(client, campaign_slug, prefix, form):
    assert client.post(prefix, data=form).status_code < 500


@SWEEP
@given(body=st.recursive(st.none() | st.text() | st.integers(), st.lists, max_leaves=20))
def test_any_json_to_the_webhooks_is_answered_without_a_500(client, body):
    raw = json.dumps(body)
    for path in ("/webhooks/ses", "/webhooks/bounces"):
        assert client.post(path, data=raw, content_type="application/json").status_code < 500
