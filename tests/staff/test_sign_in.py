"""Signing in to the staff app: passwords, sessions, CSRF and sign-out everywhere."""

from __future__ import annotations

from app.auth import accounts
from app.auth.models import Role
from tests.staff.conftest import PASSWORD, csrf_from


def test_anonymous_staff_page_redirects_to_sign_in(anonymous_client):
    response = anonymous_client.get("/staff/supporters/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/staff/login?next=")


def test_front_door_leads_to_the_staff_app(anonymous_client):
    response = anonymous_client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/staff/"


def test_sign_in_with_the_right_password_opens_the_dashboard(staff_client):
    client = staff_client(Role.CAMPAIGNER)
    page = client.get("/staff/")
    assert page.status_code == 200
    assert client.user.email in page.get_data(as_text=True)
    assert page.headers["Cache-Control"] == "no-store"


def test_wrong_password_is_refused_next_to_the_field(app, make_staff_user, anonymous_client):
    user = make_staff_user(Role.ANALYST)
    token = csrf_from(anonymous_client.get("/staff/login").get_data(as_text=True))
    response = anonymous_client.post(
        "/staff/login", data={"email": user.email, "password": "wrong" * 4, "csrf_token": token}
    )
    assert response.status_code == 422
    assert "do not match an account" in response.get_data(as_text=True)
    assert anonymous_client.get("/staff/").status_code == 302


def test_sign_in_without_a_csrf_token_is_refused(make_staff_user, anonymous_client):
    user = make_staff_user(Role.ADMIN)
    response = anonymous_client.post(
        "/staff/login", data={"email": user.email, "password": PASSWORD}
    )
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)


def test_sign_in_does_not_follow_an_offsite_next(make_staff_user, anonymous_client):
    user = make_staff_user(Role.ANALYST)
    token = csrf_from(anonymous_client.get("/staff/login").get_data(as_text=True))
    response = anonymous_client.post(
        "/staff/login?next=//evil.example/x",
        data={"email": user.email, "password": PASSWORD, "csrf_token": token},
    )
    assert response.headers["Location"] == "/staff/"


def test_analyst_gets_403_on_an_admin_page(staff_client):
    client = staff_client(Role.ANALYST)
    assert client.get("/staff/admin/").status_code == 403


def test_sign_out_everywhere_ends_other_sessions(app, staff_client, make_staff_user):
    user = make_staff_user(Role.CAMPAIGNER)
    laptop = staff_client(user=user)
    phone = staff_client(user=user)
    assert phone.get("/staff/").status_code == 200
    assert laptop.submit("/staff/account/sign-out-everywhere").status_code == 302
    assert phone.get("/staff/").status_code == 302
    assert laptop.get("/staff/").status_code == 302


def test_a_disabled_user_is_signed_out(staff_client, make_staff_user):
    user = make_staff_user(Role.CAMPAIGNER)
    client = staff_client(user=user)
    accounts.disable_user(user, actor="test")
    assert client.get("/staff/").status_code == 302


def test_session_cookie_is_secure_httponly_and_lax_on_https(app, staff_client):
    client = staff_client(Role.ANALYST)
    cookie = client.get_cookie("session")
    assert cookie.secure and cookie.http_only and cookie.same_site == "Lax"


def test_repeated_wrong_passwords_are_throttled(settings, redis_conn, make_staff_user):
    from dataclasses import replace

    from app import create_app

    strict = create_app(replace(settings, staff_login_rate="3/minute"), {"TESTING": True})
    user = make_staff_user(Role.CAMPAIGNER)
    client = strict.test_client()
    statuses = []
    for _ in range(4):
        token = csrf_from(client.get("/staff/login").get_data(as_text=True))
        response = client.post(
            "/staff/login", data={"email": user.email, "password": "x" * 12, "csrf_token": token}
        )
        statuses.append(response.status_code)
    assert statuses == [422, 422, 422, 429]
    assert "Too many sign-in attempts" in response.get_data(as_text=True)
