"""Private-page headers: one definition in app/security.py, installed on each token blueprint."""

from __future__ import annotations

from flask import Response

from app.security import PRIVATE_PAGE_HEADERS, private_page_headers


def test_private_page_headers_fill_in_what_the_view_left_unset():
    plain = private_page_headers(Response("hi"))
    assert {name: plain.headers[name] for name in PRIVATE_PAGE_HEADERS} == {
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Robots-Tag": "noindex, nofollow",
    }
    own = private_page_headers(Response("hi", headers={"Cache-Control": "max-age=60"}))
    assert own.headers["Cache-Control"] == "max-age=60"  # a view's own choice stands


def test_every_token_blueprint_uses_the_one_definition(app):
    for blueprint in ("tracking", "campaign_pages"):
        assert private_page_headers in app.after_request_funcs[blueprint]
