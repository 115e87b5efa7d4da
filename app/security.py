"""What every request and response gets, set in one place: input limits and security headers.

`install_security(app, settings)` is called once by create_app. The hooks run on every request,
including the open pixel and click redirect, so everything they need is computed here once.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re

from flask import Flask, Response, abort, request
from werkzeug.routing import IntegerConverter

# Largest value a PostgreSQL bigint (and so every id and count column) can hold.
MAX_BIGINT = 2**63 - 1

# Bodies: public forms and API JSON are small; bounce webhooks carry an SNS envelope around an
# SES notification (SNS allows 256 KiB, and JSON escaping can grow it); mail HTML sent through
# the API can be big. Only the staff CSV import gets the configured large limit.
FORM_MAX_BYTES = 64 * 1024
WEBHOOK_MAX_BYTES = 1024 * 1024
API_MAX_BYTES = 2 * 1024 * 1024
# The API's upload and the staff app's: both take whole CSV files of supporters.
IMPORT_ENDPOINTS = frozenset({"imports.start_import", "staff_imports.upload"})
MACHINE_PREFIXES = ("/api/", "/webhooks/")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

# Deeper JSON than any real body needs; Python's parser would hit its recursion limit (a 500)
# on a few thousand levels, and every later walk over the data would too.
MAX_JSON_DEPTH = 32
# Stands in for the document in our JSONDecodeErrors: webargs reads an empty `doc` as "no body".
BODY_DOC = "(request body)"

# C0 controls and DEL have no place in a URL path; NUL in a form or query value would reach
# PostgreSQL, which cannot store it in text.
PATH_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# The API docs: Swagger UI from /api/v1/docs/assets, plus the one inline script
# flask-smorest's template starts it with (allowed by its hash, see _docs_csp).
DOCS_ENDPOINT = "api-docs.openapi_swagger_ui"
INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)
HSTS = "max-age=31536000; includeSubDomains"


# Pages whose URL carries a token (action, unsubscribe, preferences, web view, tracking links):
# keep them out of caches, search engines and other sites' Referer headers.
PRIVATE_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
}


def private_page_headers(response: Response) -> Response:
    """Add PRIVATE_PAGE_HEADERS where the view set none of its own; a blueprint's after_request."""
    for name, value in PRIVATE_PAGE_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def parse_json(raw: bytes | str, max_depth: int = MAX_JSON_DEPTH):
    """Parse a JSON body, raising json.JSONDecodeError for bad or too deeply nested input."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        data = json.loads(text)
    except UnicodeDecodeError as exc:
        raise json.JSONDecodeError(f"not UTF-8: {exc.reason}", BODY_DOC, 0) from exc
    except RecursionError as exc:
        raise json.JSONDecodeError("nested too deeply", BODY_DOC, 0) from exc
    pending = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict | list):
            if depth > max_depth:
                raise json.JSONDecodeError(f"nested deeper than {max_depth} levels", BODY_DOC, 0)
            children = value.values() if isinstance(value, dict) else value
            pending.extend((child, depth + 1) for child in children)
    return data


def parse_id(text: str) -> int | None:
    """Read a form or query id: ASCII digits only ("²".isdigit() is true) and within bigint."""
    if not (text.isascii() and text.isdecimal()):
        return None
    value = int(text)
    return value if 0 < value <= MAX_BIGINT else None


class BigintConverter(IntegerConverter):
    """`<int:…>` in URLs, refusing (as an unmatched route: 404) what no bigint id can be."""

    def __init__(self, map, fixed_digits=0, min=None, max=MAX_BIGINT, signed=False):  # noqa: A002
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def install_int_converter(app: Flask) -> None:
    """Make every `<int:…>` route bounded; must run before any route is registered."""
    app.url_map.converters["int"] = BigintConverter


def install_security(app: Flask, settings) -> None:
    """Install the input checks and security headers every request and response gets."""
    https = settings.base_url.startswith("https://")
    app.config.update(
        MAX_CONTENT_LENGTH=FORM_MAX_BYTES,
        SESSION_COOKIE_SECURE=https,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    import_max_bytes = settings.max_import_bytes
    headers = _security_headers(https)
    docs_csp_cache: dict[bytes, str] = {}

    @app.before_request
    def _check_input() -> None:
        request.max_content_length = _body_limit(request.path, request.endpoint, import_max_bytes)
        if PATH_CONTROL_CHARS.search(request.path):
            abort(400, "The address contains characters that are not allowed.")
        if request.query_string and _has_nul(request.args):
            abort(400, "The address contains characters that are not allowed.")
        # Pages' forms; the API checks its bodies in its schemas (app/api/schemas.py), and
        # parsing a form here would hide a mis-typed body from its 415.
        if (
            request.mimetype in FORM_TYPES
            and not request.path.startswith(MACHINE_PREFIXES)
            and _has_nul(request.form)
        ):
            abort(400, "The form contains characters that are not allowed.")

    @app.after_request
    def _add_security_headers(response: Response) -> Response:
        response_headers = response.headers
        for name, value in headers:
            if name not in response_headers:
                response_headers[name] = value
        if request.endpoint == DOCS_ENDPOINT:
            response_headers["Content-Security-Policy"] = _docs_csp(response, docs_csp_cache)
        return response


def _security_headers(https: bool) -> tuple[tuple[str, str], ...]:
    headers = [
        ("Content-Security-Policy", CSP),
        ("X-Frame-Options", "DENY"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ]
    if https:
        headers.append(("Strict-Transport-Security", HSTS))
    return tuple(headers)


def _body_limit(path: str, endpoint: str | None, import_max_bytes: int) -> int:
    if endpoint in IMPORT_ENDPOINTS:
        return import_max_bytes
    if path.startswith("/api/"):
        return API_MAX_BYTES
    if path.startswith("/webhooks/"):
        return WEBHOOK_MAX_BYTES
    return FORM_MAX_BYTES


def _has_nul(values) -> bool:
    """Whether any name or value of a (multi-valued) query or form holds NUL."""
    return any("\x00" in key or "\x00" in value for key, value in values.items(multi=True))


def _docs_csp(response: Response, cache: dict[bytes, str]) -> str:
    """Allow the docs page its assets and its own inline script (by hash), nothing else."""
    body = response.get_data()
    script = INLINE_SCRIPT.search(body)
    key = script.group(1) if script else b""
    if key not in cache:
        digest = base64.b64encode(hashlib.sha256(key).digest()).decode()
        cache[key] = (
            f"default-src 'self'; script-src 'self' 'sha256-{digest}'; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
    return cache[key]
