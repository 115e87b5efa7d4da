"""One Flask app per worker process, so jobs get an app context without rebuilding the app."""

from __future__ import annotations

from contextlib import contextmanager

from flask import Flask, current_app, has_app_context

_app: Flask | None = None


def set_app(app: Flask) -> None:
    global _app
    _app = app


def get_app() -> Flask:
    global _app
    if has_app_context():
        return current_app._get_current_object()
    if _app is None:
        from app import create_app

        _app = create_app()
    return _app


@contextmanager
def job_context():
    """Yield the settings inside an app context; always leave the session clean."""
    app = get_app()
    from app.extensions import db

    with app.app_context():
        try:
            yield app.config["CLARION"]
        finally:
            db.session.remove()
