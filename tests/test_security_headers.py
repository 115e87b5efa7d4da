"""Every response carries the security headers; pages cannot be framed by another site."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import replace
from datetime import timedelta

import pytest

from app import create_app
from app.campaigns.models import Campaign, CampaignKind, CampaignStatus
from app.db import utcnow
from app.extensions import db
from app.links.tokens import Purpose, TokenService
from app.security import CSP, HSTS
from app.supporters.services import upsert_supporter
from tests.factories import make_mailing


@pytest.fixture
def links(settings):
    """Signed paths for one real supporter and mailing, and an open campaign's page."""
    mailing = make_mailing()
    supporter, _ = upsert_supporter({"email": "hdr@example.org"}, actor="test")
    db.session.add(
        Campaign(
            slug="free-them",
            kind=CampaignKind.PETITION,
            status=CampaignStatus.OPEN,
            title="Free them",
            timezone="UTC",
            deadline=utcnow() + timedelta(days=3),
        )
    )
    db.session.commit()
    tokens = TokenService(settings.secret_keys)

    def path(prefix: str, purpose: Purpose) -> str:
        return f"/{prefix}/{tokens.dumps(purpose, mailing.id, supporter.id)}"

    return {
        "unsubscribe": path("u", Purpose.UNSUBSCRIBE),
        "preferences": path("p", Purpose.PREFERENCES),
        "action": path("a", Purpose.ACTION),
        "campaign": "/campaigns/free-them",
    }


def assert_protected(response, csp: str | None = CSP) -> None:
    headers = response.headers
    if csp is not None:
        assert headers["Content-Security-Policy"] == csp
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"]
    assert headers["Strict-Transport-Security"] == HSTS  # the test BASE_URL is https


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/healthz",
        "/no-such-page",
        "/campaigns/no-such-campaign",
        "/a/not-a-token",
        "/u/not-a-token",
        "/p/not-a-token",
        "/v/not-a-token",
        "/api/v1/openapi.json",
        "/api/v1/supporters",
        "/api/v1/no-such-endpoint",
        "/static/clarion.css",
        "/dev/mailbox",
    ],
)
def test_every_response_family_gets_the_headers(client, path):
    assert_protected(client.get(path))


@pytest.mark.parametrize("page", ["unsubscribe", "preferences", "action", "campaign"])
def test_supporter_pages_get_the_headers(client, links, page):
    response = client.get(links[page])
    assert response.status_code < 500
    assert_protected(response)


def test_webhook_and_error_responses_get_the_headers(client):
    assert_protected(client.post("/webhooks/ses", data=b"{"))
    assert_protected(client.post("/webhooks/bounces", json={}))
    assert_protected(client.get("/campaigns/%00"))


def test_hot_paths_keep_their_headers_and_get_the_rest(client):
    pixel = client.get("/o/not-a-token.gif")
    assert pixel.status_code == 200 and pixel.mimetype == "image/gif"
    assert pixel.headers["Referrer-Policy"] == "no-referrer"
    assert_protected(pixel)
    click = client.get("/c/not-a-token/1")
    assert_protected(click)


def test_api_docs_may_run_only_their_own_inline_script(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    (script,) = re.findall(rb"<script>(.*?)</script>", response.get_data(), re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(script).digest()).decode()
    assert f"script-src 'self' 'sha256-{digest}'" in csp
    assert "'unsafe-eval'" not in csp and "frame-ancestors 'none'" in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    for asset in re.findall(rb'src="([^"]+)"', response.get_data()):
        assert asset.startswith(b"/api/v1/docs/assets/")
        assert client.get(asset.decode()).status_code == 200


def test_dev_mailbox_message_keeps_its_own_policy(client, settings):
    name = "20260101T000000000000Z-" + "a" * 32
    settings.capture_dir.mkdir(parents=True, exist_ok=True)  # another test may have removed it
    (settings.capture_dir / f"{name}.eml").write_bytes(
        b"From: a@example.org\r\nSubject: Hi\r\nContent-Type: text/html\r\n\r\n<p>Hi</p>"
    )
    response = client.get(f"/dev/mailbox/{name}")
    assert response.status_code == 200
    assert "frame-ancestors 'self'" in response.headers["Content-Security-Policy"]
    assert "script-src" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_session_cookie_is_secure_when_the_site_is_https(app):
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_plain_http_development_gets_no_hsts_and_plain_cookies(settings):
    local = create_app(replace(settings, base_url="http://127.0.0.1:5000"), {"TESTING": True})
    with local.app_context():
        response = local.test_client().get("/healthz")
    assert "Strict-Transport-Security" not in response.headers
    assert response.headers["X-Frame-Options"] == "DENY"
    assert local.config["SESSION_COOKIE_SECURE"] is False
