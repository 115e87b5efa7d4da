"""Who may see which staff page: sign-in, roles and CSRF, checked in one place for every route.

Every staff view says who may use it with `@requires(Role.X)` or `@public`. A guard that runs
before every staff request enforces it, and refuses any view that says neither (fail closed),
so a new page cannot be left open by forgetting a decorator. tests/staff/test_route_walk.py
walks the URL map to prove it.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, abort, current_app, g, redirect, request, session, url_for
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFProtect

from app.auth.accounts import user_for_session_id
from app.auth.models import Role, StaffUser
from app.auth.services import role_allows

STAFF_PREFIX = "/staff"  # where the staff app lives; mail links to it are built outside requests
login_manager = LoginManager()
login_manager.login_view = "staff_account.login"
login_manager.login_message = "Please sign in to continue."
login_manager.login_message_category = "info"
csrf = CSRFProtect()

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Pages an admin without two-factor may still reach in production: enough to set it up.
TWO_FACTOR_SETUP_ENDPOINTS = frozenset(
    {"staff_account.two_factor", "staff_account.logout", "static"}
)


@login_manager.user_loader
def _load_user(session_id: str) -> StaffUser | None:
    return user_for_session_id(session_id)


def requires(role: Role) -> Callable:
    """Mark a staff view as open to signed-in users whose role is at least `role`."""

    def mark(view):
        view.staff_role = role
        return view

    return mark


def public(view):
    """Mark a staff view as open to everyone (sign-in, password reset)."""
    view.staff_public = True
    return view


def view_role(view) -> Role | None:
    return getattr(view, "staff_role", None)


def is_public(view) -> bool:
    return getattr(view, "staff_public", False)


def current_staff() -> StaffUser:
    return current_user._get_current_object()  # noqa: SLF001 - Flask-Login's proxy target


def actor() -> str:
    """How the audit log and consent history name the signed-in user."""
    user = current_staff()
    return f"staff:{user.email}"


def can(role: Role) -> bool:
    """For templates: show a button only to those whose role allows what it does."""
    return bool(current_user.is_authenticated and role_allows(current_user.role, role))


def staff_blueprint(name: str, import_name: str, url_prefix: str) -> Blueprint:
    """A blueprint for a staff area, with the sign-in, role and CSRF checks on every route."""
    blueprint = Blueprint(name, import_name, url_prefix=url_prefix)

    @blueprint.before_request
    def check_access():
        # CSRF first: a forged POST is refused before anything, even for a public view.
        if request.method in UNSAFE_METHODS:
            csrf.protect()
        view = current_app.view_functions.get(request.endpoint)
        if view is None:
            return None  # a 404/405 on the way
        if is_public(view):
            return None
        role = view_role(view)
        if role is None:
            abort(403)  # a view that says nobody may use it: refuse
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if not role_allows(current_user.role, role):
            abort(403, f"This page needs the {role.value} role; you are {current_user.role.value}.")
        if _needs_two_factor_setup() and request.endpoint not in TWO_FACTOR_SETUP_ENDPOINTS:
            return redirect(url_for("staff_account.two_factor"))
        g.staff_user = current_user
        return None

    @blueprint.after_request
    def no_store(response):
        # Staff pages show supporters' personal data: never cached, never in Referer headers.
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    return blueprint


def _needs_two_factor_setup() -> bool:
    settings = current_app.config["CLARION"]
    return (
        settings.is_production
        and current_user.role == Role.ADMIN
        and not current_user.has_two_factor
    )


def safe_next_url(target: str | None, default: str) -> str:
    """A `next=` target only if it stays on this site (no open redirect after sign-in)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


def remember_session() -> None:
    session.permanent = True  # lasts PERMANENT_SESSION_LIFETIME, not until the browser closes
