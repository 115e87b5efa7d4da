"""Shared pieces for browser tests: Debian's Chromium, its launch arguments, a live app server.

Browser tests serve the real app on a loopback port to Playwright's Chromium. The server runs
in another thread with its own database connections, so the rows it must see are committed:
mark such tests `integration` (their tables are emptied afterwards).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import pytest
from flask import Flask
from werkzeug.serving import make_server

from app import create_app
from app.config import PROJECT_ROOT, Settings
from app.extensions import db
from tests.smtp_sink import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Screenshots a browser test leaves for people to look at (CI keeps them as artifacts).
ARTIFACTS = PROJECT_ROOT / "test-artifacts"

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
)


class LiveServer(NamedTuple):
    url: str
    app: Flask
    settings: Settings


@contextmanager
def live_server(settings: Settings, smtp_url: str) -> Iterator[LiveServer]:
    """Serve a fresh app on a free loopback port, sending mail to `smtp_url`."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    live_settings = replace(settings, base_url=url, smtp_url=smtp_url)
    live_app = create_app(live_settings, {"TESTING": True})
    server = make_server("127.0.0.1", port, live_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveServer(url, live_app, live_settings)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        with live_app.app_context():
            db.engine.dispose()  # no idle connections left to hold up the truncate
