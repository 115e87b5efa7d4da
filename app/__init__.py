"""Clarion: email campaigns and constituent tracking for human-rights advocacy."""

from __future__ import annotations

from flask import Flask, render_template, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.exceptions import HTTPException

from app.config import PROJECT_ROOT, Settings
from app.errors import DomainError
from app.security import install_int_converter, install_security


def create_app(settings: Settings | None = None, test_config: dict | None = None) -> Flask:
    """Build the Flask application for the given settings (read from the environment if none)."""
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.session_interface = _CookieSessionInterface()
    install_int_converter(app)
    app.config.update(
        SECRET_KEY=settings.secret_keys[0],
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(settings.database_url),
        CLARION=settings,
        API_TITLE="Clarion API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="/api/v1/docs/assets/",
        OPENAPI_SWAGGER_UI_CONFIG={"validatorUrl": None},
        JSON_SORT_KEYS=False,
    )
    install_security(app, settings)
    if test_config:
        app.config.update(test_config)

    # This file's imports of app modules stay inside functions: every `import app.<module>`
    # (mailers/ and workers/ import app.config) runs this file first, before any domain.
    from app.extensions import api, db, init_limiter, migrate

    db.init_app(app)
    init_limiter(app, settings)  # rate limits of the public action forms
    migrate.init_app(
        app, db, directory=str(_migrations_dir()), render_as_batch=True, compare_type=True
    )
    _import_models()
    api.init_app(app)
    _register_api(api)
    _register_pages(app)
    _register_osdi(app)
    _register_error_pages(app)

    from app.cli import register_commands

    register_commands(app)
    return app


class _CookieSessionInterface(SecureCookieSessionInterface):
    """Flask's cookie sessions, building the cookie signer only when a cookie has come in."""

    def open_session(self, app: Flask, request):
        # Flask builds a signer (and derives its key) on every request, then finds no cookie:
        # the open pixel and tracked clicks, which carry none, paid for it every time.
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


def _engine_options(database_url: str) -> dict:
    if database_url.startswith("sqlite"):
        # Web, worker and CLI share one file: wait for the writer rather than fail at once.
        return {"connect_args": {"timeout": 30}}
    return {"pool_pre_ping": True}


def _migrations_dir():
    return PROJECT_ROOT / "migrations"


def _import_models() -> None:
    """Import every domain's models so SQLAlchemy and Alembic see the whole schema."""
    import app.auth.models  # noqa: F401
    import app.campaigns.models  # noqa: F401
    import app.mailings.models  # noqa: F401
    import app.osdi.models  # noqa: F401
    import app.supporters.models  # noqa: F401
    import app.tracking.models  # noqa: F401
    import app.tracking.revocations  # noqa: F401


def _register_api(api) -> None:
    from app.routes import register_blueprints

    register_blueprints(api)


def _register_pages(app: Flask) -> None:
    from app.pages import register_pages

    register_pages(app)


def _register_osdi(app: Flask) -> None:
    # A plain blueprint beside the flask-smorest API: OSDI answers HAL+JSON in its own shapes.
    from app.osdi.views import osdi

    app.register_blueprint(osdi)


def _register_error_pages(app: Flask) -> None:
    from app.api.errors import (
        domain_error_response,
        http_error_response,
        unexpected_error_response,
    )

    def wants_json() -> bool:
        return request.path.startswith("/api/") or request.path.startswith("/webhooks/")

    from app.osdi import views as osdi

    @app.errorhandler(HTTPException)
    def handle_http_exception(exc: HTTPException):
        if osdi.is_osdi_request():
            return osdi.http_error(exc)
        if wants_json():
            return http_error_response(exc)
        return render_template(
            "error.html", status=exc.code, title=exc.name, message=exc.description
        ), exc.code

    @app.errorhandler(DomainError)
    def handle_domain_error(exc: DomainError):
        # A refusal a service raised on purpose: its own status and words, never a 500.
        # Supporter pages (tracking, campaigns) answer with their own problem page instead.
        if wants_json():
            return domain_error_response(exc)
        return render_template(
            "error.html", status=exc.status, title=exc.title, message=exc.message
        ), exc.status

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception):
        if isinstance(exc, HTTPException):
            return handle_http_exception(exc)
        if wants_json():
            return unexpected_error_response(exc)
        app.logger.exception("unhandled error on %s", request.path)
        return render_template(
            "error.html",
            status=500,
            title="Something went wrong",
            message="We could not complete that. Please try again shortly.",
        ), 500
