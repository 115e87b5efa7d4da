"""Password reset links and two-factor sign-in, through the staff app's pages and its mail job."""

from __future__ import annotations

import re
import time
from dataclasses import replace

import pyotp
import pytest

from app import create_app
from app.auth import accounts
from app.auth.models import AuditEntry, Role, StaffUser
from app.extensions import db
from app.queues import QueueName, get_queue
from tests.staff.conftest import PASSWORD, StaffClient, csrf_from

NEW_PASSWORD = "a whole new passphrase here"
RESET_LINK = re.compile(r"https://clarion\.test(/staff/reset-password/\S+)")
SECRET_ON_PAGE = re.compile(r'class="totp-secret"[^>]*>([A-Z2-7 ]+)<')


@pytest.fixture
def perform_staff_mail(settings, smtp_sink, redis_conn):
    """perform_staff_mail(user_id, kind) -> the mail the queued job sent to the SMTP sink."""
    worker_app = create_app(replace(settings, smtp_url=smtp_sink.url), {"TESTING": True})

    def perform(user_id: int, kind: str):
        job = get_queue(settings, QueueName.DEFAULT).fetch_job(f"staff-mail-{kind}-{user_id}")
        assert job is not None and job.func_name == "workers.staff_mail.send_staff_mail"
        before = len(smtp_sink.messages)
        # The job reads its settings from the worker's app: one that mails the sink.
        with worker_app.app_context():
            assert job.perform() == "sent"
        assert len(smtp_sink.messages) == before + 1
        return smtp_sink.messages[-1]

    return perform


def post_form(client, url: str, data: dict):
    token = csrf_from(client.get(url).get_data(as_text=True))
    return client.post(url, data={**data, "csrf_token": token})


def ask_for_reset(client, email: str):
    return post_form(client, "/staff/forgot-password", {"email": email})


def flashes(client) -> str:
    return client.get("/staff/login").get_data(as_text=True)


def link_in(mail) -> str:
    match = RESET_LINK.search(mail.message.get_content())
    assert match, mail.message.get_content()
    return match.group(1)


def audit_actions(user_id: int) -> list[str]:
    entries = db.session.query(AuditEntry).filter_by(subject_type="staff_user", subject_id=user_id)
    return [entry.action for entry in entries.order_by(AuditEntry.id)]


# --- Password reset --------------------------------------------------------------------------


def test_a_reset_link_arrives_by_mail_and_sets_a_new_password(
    app, make_staff_user, anonymous_client, staff_client, perform_staff_mail, smtp_sink
):
    user = make_staff_user(Role.CAMPAIGNER, name="Rosa Parks")
    user_id, email = user.id, user.email
    other_device = staff_client(user=user)

    response = ask_for_reset(anonymous_client, email.upper())
    assert response.status_code == 302 and response.headers["Location"] == "/staff/login"
    assert "If that address has an account" in flashes(anonymous_client)

    mail = perform_staff_mail(user_id, "reset")
    assert mail.rcpt_tos == [email]
    assert mail.message["Subject"] == "Reset your Clarion password"
    assert mail.message["Auto-Submitted"] == "auto-generated"
    assert "Hello Rosa Parks," in mail.message.get_content()
    path = link_in(mail)

    page = anonymous_client.get(path)
    assert page.status_code == 200 and "Choose a new password" in page.get_data(as_text=True)
    too_short = post_form(anonymous_client, path, {"password": "short", "confirm": "short"})
    html = too_short.get_data(as_text=True)
    assert too_short.status_code == 422
    assert 'id="password-error"' in html and "at least 12 characters" in html
    mismatch = post_form(anonymous_client, path, {"password": NEW_PASSWORD, "confirm": "x" * 20})
    assert mismatch.status_code == 422 and "not the same" in mismatch.get_data(as_text=True)

    done = post_form(anonymous_client, path, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 302 and done.headers["Location"] == "/staff/login"
    assert "Your password is set" in flashes(anonymous_client)
    # Signed out everywhere: the session on the other device has ended.
    assert other_device.get("/staff/").status_code == 302
    user = db.session.get(StaffUser, user_id)
    assert accounts.authenticate(email, PASSWORD) is None
    assert accounts.authenticate(email, NEW_PASSWORD) is not None
    anonymous_client.sign_in(user, NEW_PASSWORD)
    assert anonymous_client.get("/staff/").status_code == 200
    assert audit_actions(user_id)[-2:] == ["password_reset_requested", "password_reset"]

    # The link works once.
    again = anonymous_client.get(path)
    assert again.status_code == 410
    assert "already been used" in again.get_data(as_text=True)
    token = csrf_from(flashes(anonymous_client))
    reused = anonymous_client.post(
        path, data={"password": "x" * 20, "confirm": "x" * 20, "csrf_token": token}
    )
    assert reused.status_code == 410


def test_an_unknown_address_gets_the_same_answer_and_no_mail(
    make_staff_user, anonymous_client, settings, redis_conn
):
    known = make_staff_user(Role.ANALYST)
    disabled = make_staff_user(Role.ANALYST)
    accounts.disable_user(disabled, actor="test")
    answers = []
    for email in (known.email, "nobody@staff.example.org", disabled.email):
        response = ask_for_reset(anonymous_client, email)
        answers.append((response.status_code, response.headers["Location"]))
        assert "If that address has an account" in flashes(anonymous_client)
    assert len(set(answers)) == 1
    job_ids = get_queue(settings, QueueName.DEFAULT).job_ids
    assert job_ids == [f"staff-mail-reset-{known.id}"]


def test_a_blank_or_hostile_email_is_refused_next_to_the_field(anonymous_client):
    response = ask_for_reset(anonymous_client, "")
    assert response.status_code == 422
    assert 'id="email-error"' in response.get_data(as_text=True)
    response = ask_for_reset(anonymous_client, "<script>alert(1)</script>" * 30)
    assert response.status_code == 422
    assert "<script>alert" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "path",
    [
        "/staff/reset-password/not-a-token",
        "/staff/reset-password/" + "A" * 3000,
        "/staff/reset-password/eyJ1IjoxfQ.Zabcde.forgedforgedforgedforged",
    ],
)
def test_a_forged_link_gets_a_safe_page(anonymous_client, path):
    for response in (anonymous_client.get(path), post_form(anonymous_client, path, {})):
        assert response.status_code in (400, 404), response.status_code
    response = anonymous_client.get(path)
    if response.status_code == 400:
        assert "This link is not valid" in response.get_data(as_text=True)
        assert "Ask for a new link" in response.get_data(as_text=True)


def test_a_link_signed_with_another_key_is_refused(make_staff_user, anonymous_client):
    user = make_staff_user(Role.ANALYST)
    token = accounts.make_reset_token(user, ("some-other-secret-key-0123456789abcdef",))
    response = anonymous_client.get(f"/staff/reset-password/{token}")
    assert response.status_code == 400


def signed_seconds_ago(monkeypatch, seconds: int, make_token):
    # itsdangerous stamps tokens with time.time(): move its clock back while the link is made.
    real = time.time
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: real() - seconds)
    token = make_token()
    monkeypatch.setattr("itsdangerous.timed.time.time", real)
    return token


def test_an_expired_reset_link_gets_a_safe_page(monkeypatch, settings, make_staff_user, client):
    user = make_staff_user(Role.ANALYST)
    keys = settings.secret_keys
    fresh = signed_seconds_ago(monkeypatch, 50 * 60, lambda: accounts.make_reset_token(user, keys))
    assert client.get(f"/staff/reset-password/{fresh}").status_code == 200
    old = signed_seconds_ago(monkeypatch, 61 * 60, lambda: accounts.make_reset_token(user, keys))
    response = client.get(f"/staff/reset-password/{old}")
    assert response.status_code == 410
    assert "This link has expired" in response.get_data(as_text=True)
    # An invitation lasts days, not an hour; but not for ever.
    invite = signed_seconds_ago(
        monkeypatch, 2 * 3600, lambda: accounts.make_reset_token(user, keys, "invite")
    )
    assert client.get(f"/staff/reset-password/{invite}").status_code == 200
    stale = signed_seconds_ago(
        monkeypatch, 4 * 86400, lambda: accounts.make_reset_token(user, keys, "invite")
    )
    assert client.get(f"/staff/reset-password/{stale}").status_code == 410


def test_a_disabled_users_link_stops_working(settings, make_staff_user, client):
    user = make_staff_user(Role.ANALYST)
    token = accounts.make_reset_token(user, settings.secret_keys)
    accounts.disable_user(user, actor="test")
    assert client.get(f"/staff/reset-password/{token}").status_code == 410


def test_reset_requests_are_throttled(settings, redis_conn, make_staff_user):
    strict = create_app(replace(settings, staff_login_rate="3/minute"), {"TESTING": True})
    strict.test_client_class = StaffClient
    user = committed(make_staff_user(Role.CAMPAIGNER))
    client = strict.test_client()
    statuses = [ask_for_reset(client, user.email).status_code for _ in range(4)]
    assert statuses == [302, 302, 302, 429]
    response = ask_for_reset(client, user.email)
    assert "Too many reset requests" in response.get_data(as_text=True)


# --- Two-factor sign-in ----------------------------------------------------------------------


def set_up_two_factor(client) -> tuple[str, str]:
    """Turn two-factor on through its page; return the secret and the code that confirmed it."""
    page = client.get("/staff/account/two-factor")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "otpauth://totp/" in html
    secret = SECRET_ON_PAGE.search(html).group(1).replace(" ", "")
    wrong = client.submit("/staff/account/two-factor", {"code": "12345x"})
    assert wrong.status_code == 422
    assert 'id="code-error"' in wrong.get_data(as_text=True)
    code = pyotp.TOTP(secret).now()
    response = client.submit("/staff/account/two-factor", {"code": code})
    assert response.status_code == 302 and response.headers["Location"] == "/staff/account"
    return secret, code


def code_at_next_step(secret: str) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30)


def sign_in_with_password(client, user) -> str:
    response = post_form(client, "/staff/login", {"email": user.email, "password": PASSWORD})
    assert response.status_code == 302
    return response.headers["Location"]


def test_two_factor_set_up_then_sign_in_needs_a_fresh_code(staff_client, make_staff_user, app):
    user = make_staff_user(Role.CAMPAIGNER)
    client = staff_client(user=user)
    secret, first_code = set_up_two_factor(client)
    assert user.has_two_factor and "Two-factor sign-in</dt><dd>On" in client.get(
        "/staff/account"
    ).get_data(as_text=True)
    assert audit_actions(user.id)[-1] == "two_factor_enabled"

    laptop = app.test_client()
    assert sign_in_with_password(laptop, user).startswith("/staff/login/code")
    assert laptop.get("/staff/").status_code == 302  # the password alone does not sign in
    # The code that turned two-factor on has been used: it does not sign in.
    used = post_form(laptop, "/staff/login/code", {"code": first_code})
    assert used.status_code == 422 and "has been used" in used.get_data(as_text=True)
    code = code_at_next_step(secret)
    assert post_form(laptop, "/staff/login/code", {"code": code}).status_code == 302
    assert laptop.get("/staff/").status_code == 200

    # Someone who watched the code typed cannot replay it.
    thief = app.test_client()
    sign_in_with_password(thief, user)
    replayed = post_form(thief, "/staff/login/code", {"code": code})
    assert replayed.status_code == 422
    assert thief.get("/staff/").status_code == 302


def test_the_code_page_needs_the_password_first(anonymous_client):
    response = anonymous_client.get("/staff/login/code")
    assert response.status_code == 302 and response.headers["Location"] == "/staff/login"


def test_turning_two_factor_off_needs_the_password_and_a_code(staff_client, make_staff_user):
    user = make_staff_user(Role.ANALYST)
    client = staff_client(user=user)
    secret, _ = set_up_two_factor(client)
    page = client.get("/staff/account/two-factor")
    assert "Turn off two-factor sign-in" in page.get_data(as_text=True)
    code = code_at_next_step(secret)

    wrong_password = client.submit(
        "/staff/account/two-factor/off", {"password": "not my password", "code": code}
    )
    assert wrong_password.status_code == 422
    assert 'id="password-error"' in wrong_password.get_data(as_text=True)
    wrong_code = client.submit(
        "/staff/account/two-factor/off", {"password": PASSWORD, "code": "12345x"}
    )
    assert wrong_code.status_code == 422
    assert 'id="code-error"' in wrong_code.get_data(as_text=True)
    assert user.has_two_factor

    done = client.submit("/staff/account/two-factor/off", {"password": PASSWORD, "code": code})
    assert done.status_code == 302
    assert not user.has_two_factor
    assert audit_actions(user.id)[-1] == "two_factor_disabled"


def test_turning_off_without_a_csrf_token_is_refused(staff_client, make_staff_user):
    client = staff_client(Role.ANALYST)
    response = client.post("/staff/account/two-factor/off", data={"password": PASSWORD})
    assert response.status_code == 400


@pytest.fixture
def production_app(settings):
    production = replace(settings, env="production", base_url="https://clarion.example.org")
    production.check_production()  # what production refuses to start without is all there
    application = create_app(production, {"TESTING": True})
    application.test_client_class = StaffClient
    return application


def committed(user):
    # Another app's request ends its own app context, which removes the session: rows must
    # be committed (to the test's outer transaction, still rolled back) to outlive that.
    db.session.commit()
    return user


def test_in_production_an_admin_must_set_up_two_factor_first(production_app, make_staff_user):
    admin = committed(make_staff_user(Role.ADMIN))
    admin_id = admin.id
    client = production_app.test_client()
    assert sign_in_with_password(client, admin) == "/staff/"
    for path in ("/staff/", "/staff/admin/", "/staff/supporters/", "/staff/account"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"] == "/staff/account/two-factor"
    page = client.get("/staff/account/two-factor")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Admins must use two-factor sign-in" in html
    secret = SECRET_ON_PAGE.search(html).group(1).replace(" ", "")
    token = csrf_from(html)
    code = pyotp.TOTP(secret).now()
    response = client.post("/staff/account/two-factor", data={"code": code, "csrf_token": token})
    assert response.status_code == 302
    assert client.get("/staff/admin/").status_code == 200

    # An admin cannot turn it off in production.
    page = client.get("/staff/account/two-factor").get_data(as_text=True)
    assert "Admins must keep two-factor sign-in on" in page
    refused = client.post(
        "/staff/account/two-factor/off",
        data={"password": PASSWORD, "code": code_at_next_step(secret), "csrf_token": token},
    )
    assert refused.status_code == 422
    assert db.session.get(StaffUser, admin_id).has_two_factor


def test_in_production_other_roles_may_go_without_two_factor(production_app, make_staff_user):
    campaigner = committed(make_staff_user(Role.CAMPAIGNER))
    client = production_app.test_client()
    sign_in_with_password(client, campaigner)
    assert client.get("/staff/").status_code == 200


def test_outside_production_an_admin_without_two_factor_is_let_in(staff_client):
    assert staff_client(Role.ADMIN).get("/staff/admin/").status_code == 200
