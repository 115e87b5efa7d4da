"""The API base: bearer-token auth, one JSON error shape, OpenAPI document and docs page."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from openapi_spec_validator import validate

from app import create_app
from app.auth.models import ApiToken
from app.auth.services import create_token, revoke_token
from app.extensions import db
from app.security import API_MAX_BYTES


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    return body["error"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer    "},
        {"Authorization": "Bearer clr_not-a-real-token"},
    ],
    ids=["none", "basic", "empty", "blank", "unknown"],
)
def test_requests_without_a_valid_token_get_401(client, headers):
    assert_error(client.get("/api/v1/supporters", headers=headers), 401, "unauthorized")
    response = client.post("/api/v1/lists", json={"name": "x"}, headers=headers)
    assert_error(response, 401, "unauthorized")


def test_revoked_token_gets_401(client):
    token, secret = create_token("gone", "admin")
    revoke_token(token, actor="test")
    db.session.flush()
    response = client.get("/api/v1/lists", headers={"Authorization": f"Bearer {secret}"})
    assert_error(response, 401, "unauthorized")


def test_token_use_is_recorded(client):
    token, secret = create_token("reader", "analyst")
    client.get("/api/v1/lists", headers={"Authorization": f"Bearer {secret}"})
    assert db.session.get(ApiToken, token.id).last_used_at is not None


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/api/v1/supporters", {"email": "a@example.org"}),
        ("put", "/api/v1/supporters", {"email": "a@example.org"}),
        ("post", "/api/v1/lists", {"name": "List"}),
        ("post", "/api/v1/tags", {"name": "tag"}),
        ("post", "/api/v1/segments", {"name": "s", "definition": {}}),
        ("delete", "/api/v1/supporters/1", None),
        ("get", "/api/v1/supporters/1/export", None),
        ("delete", "/api/v1/lists/1", None),
    ],
)
def test_analyst_cannot_write_or_export(client, api_token, method, path, body):
    response = getattr(client, method)(path, json=body, headers=api_token("analyst"))
    error = assert_error(response, 403, "forbidden")
    assert "analyst" in error["message"]


def test_campaigner_cannot_erase_or_export(client, api_token):
    headers = api_token("campaigner")
    created = client.post("/api/v1/supporters", json={"email": "c@example.org"}, headers=headers)
    supporter_id = created.get_json()["id"]
    assert_error(client.delete(f"/api/v1/supporters/{supporter_id}", headers=headers), 403)
    assert_error(client.get(f"/api/v1/supporters/{supporter_id}/export", headers=headers), 403)


def test_analyst_can_read(client, api_token):
    headers = api_token("analyst")
    for path in ("/api/v1/supporters", "/api/v1/lists", "/api/v1/tags", "/api/v1/segments"):
        assert client.get(path, headers=headers).status_code == 200


def test_unknown_id_is_404(client, api_token):
    headers = api_token("admin")
    for path in ("supporters", "lists", "segments", "imports"):
        assert_error(client.get(f"/api/v1/{path}/999999", headers=headers), 404, "not_found")


def test_wrong_method_is_405_with_allow(client, api_token):
    response = client.put("/api/v1/lists/1", headers=api_token("admin"))
    assert_error(response, 405, "method_not_allowed")
    assert "PATCH" in response.headers["Allow"]


def test_validation_error_is_422_with_field_messages(client, api_token):
    response = client.post(
        "/api/v1/supporters",
        json={"email": "a@example.org", "status": "maybe", "colour": "red"},
        headers=api_token("admin"),
    )
    error = assert_error(response, 422, "validation_error")
    assert set(error["details"]) == {"status", "colour"}


def test_malformed_json_is_400(client, api_token):
    response = client.post(
        "/api/v1/lists",
        data='{"name": ',
        content_type="application/json",
        headers=api_token("admin"),
    )
    assert_error(response, 400, "invalid_json")


def test_non_json_body_is_415(client, api_token):
    response = client.post("/api/v1/lists", data={"name": "Form"}, headers=api_token("admin"))
    assert_error(response, 415, "unsupported_media_type")
    response = client.patch(
        "/api/v1/lists/1", data="name=x", content_type="text/plain", headers=api_token("admin")
    )
    assert_error(response, 415, "unsupported_media_type")


def test_duplicate_list_name_is_409(client, api_token):
    headers = api_token("admin")
    assert (
        client.post("/api/v1/lists", json={"name": "Petition"}, headers=headers).status_code == 201
    )
    response = client.post("/api/v1/lists", json={"name": "Petition"}, headers=headers)
    assert_error(response, 409, "duplicate_name")


def test_oversized_body_is_413(client, api_token):
    response = client.post(
        "/api/v1/lists", json={"name": "x" * API_MAX_BYTES}, headers=api_token("admin")
    )
    assert_error(response, 413, "payload_too_large")


def _app_with_crashing_route(settings) -> Flask:
    app = create_app(settings, {"TESTING": True, "PROPAGATE_EXCEPTIONS": False})

    @app.get("/api/v1/test-crash")
    def crash():
        raise RuntimeError("secret internals /etc/passwd")

    return app


def test_unexpected_exception_is_500_json_without_traceback(settings):
    response = _app_with_crashing_route(settings).test_client().get("/api/v1/test-crash")
    error = assert_error(response, 500, "internal_error")
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and "secret internals" not in text
    assert error["details"] == {}


def test_flask_smorest_error_handler_does_not_answer(client, api_token):
    # smorest's own handler would answer {"code": 422, "status": ..., "errors": ...}.
    response = client.get("/api/v1/supporters?page=0", headers=api_token("analyst"))
    error = assert_error(response, 422, "validation_error")
    assert "page" in error["details"]


def test_openapi_document_is_valid_and_lists_every_endpoint(client, app):
    spec = client.get("/api/v1/openapi.json").get_json()
    validate(spec)
    documented = {(path, method.upper()) for path, item in spec["paths"].items() for method in item}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.endpoint.startswith(
            ("api-docs", "api_docs")
        ):
            continue
        # <int:id>, <string:name>, <any(a, b):table> → {id}, {name}, {table}
        path = re.sub(r"<(?:[a-z]+(?:\([^)]*\))?:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method) in documented, (path, method)
    operation = spec["paths"]["/api/v1/supporters/{supporter_id}"]["delete"]
    assert operation["security"] == [{"bearerAuth": []}]
    assert "admin" in operation["description"]
    assert {"401", "403"} <= set(operation["responses"])
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert "error" in spec["components"]["schemas"]["Error"]["properties"]


def test_docs_page_uses_only_local_assets(client):
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "http://" not in html and "https://" not in html
    assert '"validatorUrl": null' in html
    for asset in ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css"):
        assert f"/api/v1/docs/assets/{asset}" in html
        assert client.get(f"/api/v1/docs/assets/{asset}").status_code == 200
