"""The staff web app: server-rendered pages over the domains' services, at /staff.

Each area is a blueprint in its own module or package; `register_staff` wires them with the sign-in, role
and CSRF guard of app/staff/access.py. Views stay thin: they read a form, call a service, render.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Flask

from app.auth.models import Role
from app.staff import (
    account,
    admin,
    campaigns,
    dashboard,
    imports,
    mailings,
    reports,
    results,
    supporters,
)
from app.staff.access import can, csrf, login_manager


def register_staff(app: Flask) -> None:
    settings = app.config["CLARION"]
    secure = settings.base_url.startswith("https://")
    app.config.setdefault("SESSION_COOKIE_SECURE", secure)
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    app.config.setdefault("PERMANENT_SESSION_LIFETIME", timedelta(hours=12))
    # CSRF is checked by the staff guard for staff routes only: the API uses bearer tokens and
    # the supporters' public forms are signed links or rate-limited pages of their own.
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # good for the session's life
    app.config.setdefault("WTF_CSRF_SSL_STRICT", secure)
    csrf.init_app(app)
    login_manager.init_app(app)

    for module in (
        account,
        dashboard,
        supporters,
        imports,
        campaigns,
        mailings,
        results,
        reports,
        admin,
    ):
        app.register_blueprint(module.blueprint)

    app.jinja_env.globals.update(staff_can=can, Role=Role)
