"""The limiter's request hooks stay off the open pixel and tracked clicks (they carry no limits)."""

from __future__ import annotations

from flask import request

from app.extensions import limiter


def test_the_hot_tracking_routes_skip_the_limiter_and_pages_do_not(client, monkeypatch):
    # Every pass of the limiter's request hook starts by identifying the request.
    reached: list[str | None] = []
    identify = limiter.identify_request
    monkeypatch.setattr(
        limiter, "identify_request", lambda: reached.append(request.endpoint) or identify()
    )
    client.get("/o/not-a-token.gif")
    client.get("/c/not-a-token/1")
    assert reached == []
    client.get("/campaigns/no-such-campaign")
    assert "campaign_pages.public_page" in reached
