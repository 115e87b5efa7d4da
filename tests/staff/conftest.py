"""Staff app fixtures: users of each role and test clients signed in as them, with CSRF tokens."""

from __future__ import annotations

import re

import pytest
from flask import g
from flask.testing import FlaskClient

from app.auth.accounts import create_user
from app.auth.models import Role, StaffUser

PASSWORD = "correct horse battery staple"
CSRF_INPUT = re.compile(
    r'name="csrf_token"[^>]*value="([^"]+)"|<meta name="csrf-token" content="([^"]+)"'
)


def csrf_from(html: str) -> str:
    match = CSRF_INPUT.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1) or match.group(2)


class StaffClient(FlaskClient):
    """A test client that signs in through the real login form and sends the CSRF token."""

    user: StaffUser | None = None
    csrf_token: str | None = None

    def open(self, *args, **kwargs):
        # Tests hold one app context open, which requests reuse: without this, `g` (where
        # Flask-Login keeps the signed-in user and Flask-WTF the CSRF token) would carry from
        # one client's request into another's. In production every request has a fresh `g`.
        vars(g).clear()
        return super().open(*args, **kwargs)

    def sign_in(self, user: StaffUser, password: str = PASSWORD):
        email = user.email  # read first: another app's request may end the session it is in
        token = csrf_from(self.get("/staff/login").get_data(as_text=True))
        response = self.post(
            "/staff/login",
            data={"email": email, "password": password, "csrf_token": token},
        )
        assert response.status_code == 302, response.get_data(as_text=True)[:2000]
        self.user = user
        self.csrf_token = csrf_from(self.get("/staff/").get_data(as_text=True))
        return response

    def submit(self, url: str, data: dict | None = None, **kwargs):
        """POST a form as the browser would: with the session's CSRF token."""
        data = dict(data or {})
        data.setdefault("csrf_token", self.csrf_token)
        return self.post(url, data=data, **kwargs)


@pytest.fixture
def make_staff_user():
    """make_staff_user(role="campaigner", email=None) -> StaffUser, with password PASSWORD."""
    counter = iter(range(1, 10_000))

    def make(role: Role | str = Role.CAMPAIGNER, email: str | None = None, **kwargs) -> StaffUser:
        role = Role(role)
        email = email or f"{role.value}{next(counter)}@staff.example.org"
        return create_user(email, role, password=kwargs.pop("password", PASSWORD), **kwargs)

    return make


@pytest.fixture(autouse=True)
def staff_test_client_class(app):
    app.test_client_class = StaffClient
    yield
    app.test_client_class = None


@pytest.fixture
def staff_client(app, make_staff_user):
    """staff_client(role) -> a StaffClient signed in as a new user of that role."""

    def make(role: Role | str = Role.CAMPAIGNER, user: StaffUser | None = None) -> StaffClient:
        user = user or make_staff_user(role)
        client = app.test_client()
        client.sign_in(user)
        return client

    return make


@pytest.fixture
def anonymous_client(app) -> StaffClient:
    return app.test_client()
