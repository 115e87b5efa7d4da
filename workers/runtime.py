"""One Flask app per worker process, so jobs get an app context without rebuilding the app."""

from __future__ import annotations

from contextlib import contextmanager

from flask import Flask, current_app, has_app_context

from app import create_app
from app.extensions import db

_app: Flask | None = None


def get_app() -> Flask:
    """Return the app jobs run in: the current one, else one built once for this process.

    `clarion worker` runs its jobs inside the CLI's app context; only a plain `rq worker`
    process builds its own app.
    """
    global _app
    if has_app_context():
        return current_app._get_current_object()
    if _app is None:
        _app = create_app()
    return _app


@contextmanager
def job_context():
    """Yield the settings inside an app context; always leave the session clean."""
    app = get_app()
    with app.app_context():
        try:
            yield app.config["CLARION"]
        finally:
            db.session.remove()
