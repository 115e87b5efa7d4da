"""The admin area: staff users (invite, role, disable), API tokens and the audit log."""

from __future__ import annotations

import re

import pytest

from app.auth import accounts, audit, totp
from app.auth.models import ApiToken, AuditEntry, Role, StaffUser
from app.auth.services import find_active_token
from app.extensions import db
from app.queues import QueueName, get_queue
from tests.staff.conftest import PASSWORD
from tests.staff.test_account import NEW_PASSWORD, link_in, perform_staff_mail, post_form

__all__ = ["perform_staff_mail"]  # the fixture, used by name below

TOKEN_ON_PAGE = re.compile(r'id="token-secret"[^>]*value="(clr_[^"]+)"')


def entries(action: str) -> list[AuditEntry]:
    return list(db.session.query(AuditEntry).filter_by(action=action).order_by(AuditEntry.id))


@pytest.fixture
def admin(staff_client):
    return staff_client(Role.ADMIN)


# --- Who may enter ---------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.ANALYST, Role.CAMPAIGNER])
@pytest.mark.parametrize(
    "path",
    ["/staff/admin/", "/staff/admin/users/invite", "/staff/admin/tokens", "/staff/admin/audit"],
)
def test_analysts_and_campaigners_get_403(staff_client, role, path):
    assert staff_client(role).get(path).status_code == 403


@pytest.mark.parametrize("role", [Role.ANALYST, Role.CAMPAIGNER])
def test_a_non_admin_cannot_change_anything(staff_client, make_staff_user, role):
    client = staff_client(role)
    target = make_staff_user(Role.ANALYST)
    for path, data in [
        (f"/staff/admin/users/{target.id}/role", {"role": "admin"}),
        (f"/staff/admin/users/{target.id}/disable", {}),
        ("/staff/admin/users/invite", {"email": "x@example.org", "role": "admin"}),
        ("/staff/admin/tokens", {"name": "mine", "role": "admin"}),
    ]:
        assert client.submit(path, data).status_code == 403, path
    assert client.user.role == role and target.is_active
    assert db.session.query(ApiToken).count() == 0


def test_anonymous_visitors_are_sent_to_sign_in(anonymous_client):
    response = anonymous_client.get("/staff/admin/tokens")
    assert response.status_code == 302 and response.headers["Location"].startswith("/staff/login")


# --- Staff users -----------------------------------------------------------------------------


def test_the_users_list_shows_who_can_sign_in(admin, make_staff_user):
    analyst = make_staff_user(Role.ANALYST, name="Ann O'Lyst")
    disabled = make_staff_user(Role.CAMPAIGNER)
    accounts.disable_user(disabled, actor="test")
    accounts.record_login(analyst)
    html = admin.get("/staff/admin/").get_data(as_text=True)
    row = html[html.index(analyst.email) :].split("</tr>")[0]
    assert "Ann O&#39;Lyst" in row and "analyst" in row and "Off" in row and "active" in row
    assert analyst.last_login_at.strftime("%Y-%m-%d") in row
    row = html[html.index(disabled.email) :].split("</tr>")[0]
    assert "disabled" in row and "Never" in row


def test_an_invited_user_chooses_a_password_from_the_mail(
    admin, anonymous_client, settings, perform_staff_mail
):
    response = admin.submit(
        "/staff/admin/users/invite",
        {"email": " New.Person@Example.org ", "name": "New Person", "role": "campaigner"},
    )
    assert response.status_code == 302
    user = accounts.find_user_by_email("new.person@example.org")
    user_id = user.id
    assert user.role == Role.CAMPAIGNER and accounts.account_state(user) == "invited"
    assert accounts.authenticate(user.email, "") is None
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "new.person@example.org is invited" in page
    # Outside production the admin sees the link too, to pass on by hand.
    flashed = re.search(r"https://clarion\.test(/staff/reset-password/[^\s<]+)", page).group(1)
    [created] = entries("user_created")
    assert created.actor == f"staff:{admin.user.email}" and created.subject_id == user_id
    assert "campaigner" in created.detail

    mail = perform_staff_mail(user_id, "invite")
    assert mail.rcpt_tos == ["new.person@example.org"]
    assert mail.message["Subject"].startswith("You are invited to Clarion")
    assert "choose your password" in mail.message.get_content()
    path = link_in(mail)
    assert anonymous_client.get(flashed).status_code == 200
    page = anonymous_client.get(path)
    assert page.status_code == 200 and "Choose your password" in page.get_data(as_text=True)
    done = post_form(anonymous_client, path, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 302
    user = db.session.get(StaffUser, user_id)
    assert accounts.account_state(user) == "active"
    anonymous_client.sign_in(user, NEW_PASSWORD)
    assert anonymous_client.get("/staff/").status_code == 200
    assert [e.action for e in entries("password_set")] == ["password_set"]
    assert anonymous_client.get(flashed).status_code == 410  # the invitation worked once


def test_an_invited_user_who_asks_for_a_reset_gets_the_invitation_again(
    admin, anonymous_client, settings
):
    admin.submit("/staff/admin/users/invite", {"email": "slow@example.org", "role": "analyst"})
    user_id = accounts.find_user_by_email("slow@example.org").id
    get_queue(settings, QueueName.DEFAULT).empty()
    post_form(anonymous_client, "/staff/forgot-password", {"email": "slow@example.org"})
    assert get_queue(settings, QueueName.DEFAULT).job_ids == [f"staff-mail-invite-{user_id}"]


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"email": "", "role": "analyst"}, "email", "This field is required"),
        ({"email": "not-an-address", "role": "analyst"}, "email", "Enter an email address"),
        ({"email": "ok@example.org", "role": "superuser"}, "role", "Not a valid choice"),
        ({"email": "ok@example.org", "role": "admin", "name": "x" * 201}, "name", "characters"),
    ],
)
def test_a_bad_invitation_is_refused_next_to_the_field(admin, data, field, words):
    response = admin.submit("/staff/admin/users/invite", data)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert f'id="{field}-error"' in html and words in html
    assert accounts.find_user_by_email("ok@example.org") is None


def test_an_address_already_in_use_cannot_be_invited(admin, make_staff_user):
    taken = make_staff_user(Role.ANALYST)
    response = admin.submit(
        "/staff/admin/users/invite", {"email": taken.email.upper(), "role": "admin"}
    )
    assert response.status_code == 422
    assert "already a staff user" in response.get_data(as_text=True)
    assert taken.role == Role.ANALYST


def test_a_role_change_signs_the_user_out_and_is_audited(admin, staff_client, make_staff_user):
    user = make_staff_user(Role.CAMPAIGNER)
    their_session = staff_client(user=user)
    page = admin.get(f"/staff/admin/users/{user.id}")
    assert page.status_code == 200
    response = admin.submit(f"/staff/admin/users/{user.id}/role", {"role": "analyst"})
    assert response.status_code == 302
    assert user.role == Role.ANALYST
    assert their_session.get("/staff/").status_code == 302
    [changed] = entries("role_changed")
    assert changed.subject_id == user.id and "campaigner → analyst" in changed.detail
    forged = admin.submit(f"/staff/admin/users/{user.id}/role", {"role": "root"})
    assert forged.status_code == 422 and user.role == Role.ANALYST


def test_the_last_admin_cannot_be_demoted_or_disabled(admin, make_staff_user):
    me = admin.user
    response = admin.submit(f"/staff/admin/users/{me.id}/role", {"role": "analyst"})
    assert response.status_code == 422
    assert "last active admin" in response.get_data(as_text=True)
    assert me.role == Role.ADMIN and entries("role_changed") == []
    with pytest.raises(accounts.AccountError):
        accounts.disable_user(me, actor="test")

    other = make_staff_user(Role.ADMIN)
    accounts.disable_user(other, actor="test")
    with pytest.raises(accounts.AccountError, match="last active admin"):
        accounts.set_role(me, Role.CAMPAIGNER, actor="test")
    accounts.enable_user(other, actor="test")
    accounts.set_role(me, Role.CAMPAIGNER, actor="test")  # another admin is left: allowed
    with pytest.raises(accounts.AccountError, match="last active admin"):
        accounts.set_role(other, Role.ANALYST, actor="test")


def test_an_admin_cannot_disable_themselves(admin):
    response = admin.submit(f"/staff/admin/users/{admin.user.id}/disable")
    assert response.status_code == 302
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "cannot disable your own account" in page
    assert admin.user.is_active and entries("user_disabled") == []


def test_disable_and_enable_a_user(admin, staff_client, make_staff_user):
    user = make_staff_user(Role.ANALYST)
    their_session = staff_client(user=user)
    assert admin.submit(f"/staff/admin/users/{user.id}/disable").status_code == 302
    assert not user.is_active
    assert their_session.get("/staff/").status_code == 302
    assert accounts.authenticate(user.email, PASSWORD) is None
    assert "disabled" in admin.get("/staff/admin/").get_data(as_text=True)

    assert admin.submit(f"/staff/admin/users/{user.id}/enable").status_code == 302
    assert user.is_active
    staff_client(user=user)  # signs in again
    assert [e.action for e in entries("user_disabled") + entries("user_enabled")] == [
        "user_disabled",
        "user_enabled",
    ]


def test_an_admin_resets_a_lost_phones_two_factor(admin, staff_client, make_staff_user):
    user = make_staff_user(Role.CAMPAIGNER)
    their_session = staff_client(user=user)
    user.totp_secret = totp.new_totp_secret()
    page = admin.get(f"/staff/admin/users/{user.id}").get_data(as_text=True)
    assert "Reset two-factor sign-in" in page
    assert admin.submit(f"/staff/admin/users/{user.id}/reset-two-factor").status_code == 302
    assert not user.has_two_factor
    assert their_session.get("/staff/").status_code == 302
    assert entries("two_factor_reset")[0].subject_id == user.id


def test_an_unknown_user_is_a_404(admin):
    assert admin.get("/staff/admin/users/999999999").status_code == 404
    assert admin.get("/staff/admin/users/99999999999999999999999").status_code == 404
    assert admin.submit("/staff/admin/users/999999999/disable").status_code == 404


def test_a_forged_admin_post_without_csrf_is_refused(admin, make_staff_user):
    user = make_staff_user(Role.ANALYST)
    assert admin.post(f"/staff/admin/users/{user.id}/disable").status_code == 400
    assert user.is_active


# --- API tokens ------------------------------------------------------------------------------


def test_a_token_is_shown_once_works_and_can_be_revoked(admin):
    response = admin.submit("/staff/admin/tokens", {"name": "CRM sync", "role": "campaigner"})
    assert response.status_code == 302
    created = admin.get(response.headers["Location"])
    secret = TOKEN_ON_PAGE.search(created.get_data(as_text=True)).group(1)
    token = find_active_token(secret)
    assert token is not None and token.name == "CRM sync" and token.role == Role.CAMPAIGNER
    again = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert secret not in again and "shown once" in again

    listing = admin.get("/staff/admin/tokens").get_data(as_text=True)
    assert token.prefix in listing and secret not in listing and "Never" in listing
    assert entries("token_created")[0].subject_id == token.id

    api = admin.get("/api/v1/supporters", headers={"Authorization": f"Bearer {secret}"})
    assert api.status_code == 200
    assert admin.submit(f"/staff/admin/tokens/{token.id}/revoke").status_code == 302
    assert find_active_token(secret) is None
    assert "revoked" in admin.get("/staff/admin/tokens").get_data(as_text=True)
    assert entries("token_revoked")[0].subject_id == token.id
    api = admin.get("/api/v1/supporters", headers={"Authorization": f"Bearer {secret}"})
    assert api.status_code == 401
    # Revoking twice changes nothing more.
    admin.submit(f"/staff/admin/tokens/{token.id}/revoke")
    assert len(entries("token_revoked")) == 1


@pytest.mark.parametrize(
    ("data", "field"),
    [({"name": "", "role": "admin"}, "name"), ({"name": "x", "role": "god"}, "role")],
)
def test_a_bad_token_form_is_refused_next_to_the_field(admin, data, field):
    response = admin.submit("/staff/admin/tokens", data)
    assert response.status_code == 422
    assert f'id="{field}-error"' in response.get_data(as_text=True)
    assert db.session.query(ApiToken).count() == 0


def test_another_tokens_created_page_shows_no_secret(admin):
    first = admin.submit("/staff/admin/tokens", {"name": "one", "role": "analyst"})
    second = admin.submit("/staff/admin/tokens", {"name": "two", "role": "analyst"})
    # The secret waiting in the session is the second token's: the first's page shows none,
    # and opening it does not lose the second's.
    assert "clr_" not in admin.get(first.headers["Location"]).get_data(as_text=True)
    html = admin.get(second.headers["Location"]).get_data(as_text=True)
    assert find_active_token(TOKEN_ON_PAGE.search(html).group(1)).name == "two"
    assert admin.get("/staff/admin/tokens/999999999/created").status_code == 404


# --- Audit log -------------------------------------------------------------------------------


def test_the_audit_log_filters_by_action_and_pages_by_id(admin):
    for n in range(60):
        audit.record("cli", "mailing_sent", subject_type="mailing", subject_id=n, detail=f"#{n}")
    audit.record("cli", "user_created", detail="<script>alert(1)</script>")
    page = admin.get("/staff/admin/audit")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "&lt;script&gt;" in html and "<script>alert" not in html
    assert '<option value="mailing_sent"' in html

    first = admin.get("/staff/admin/audit?action=mailing_sent").get_data(as_text=True)
    assert first.count("mailing #") == 50 and "user_created</th>" not in first
    assert "mailing #59" in first and "mailing #10<" in first and "mailing #9<" not in first
    older = re.search(r'href="(/staff/admin/audit\?[^"]+)">Older entries', first).group(1)
    second = admin.get(older.replace("&amp;", "&")).get_data(as_text=True)
    assert (
        second.count("mailing #") == 10
        and "mailing #9<" in second
        and "Older entries" not in second
    )


@pytest.mark.parametrize(
    "query",
    ["after=abc", "after=-5", "after=99999999999999999999999", "after=²", "action=" + "x" * 500],
)
def test_bad_audit_queries_get_a_page_not_an_error(admin, query):
    assert admin.get(f"/staff/admin/audit?{query}").status_code == 200


# --- The shell, for when the web app cannot help ---------------------------------------------


def test_the_cli_lets_a_locked_out_last_admin_back_in(app, make_staff_user):
    admin = make_staff_user(Role.ADMIN)
    admin.totp_secret = totp.new_totp_secret()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "reset-two-factor", admin.email.upper()])
    assert result.exit_code == 0, result.output
    assert not admin.has_two_factor
    assert entries("two_factor_reset")[0].actor == "cli"
    refused = runner.invoke(args=["users", "set-role", admin.email, "analyst"])
    assert refused.exit_code != 0 and "last active admin" in refused.output
    assert admin.role == Role.ADMIN
    unknown = runner.invoke(args=["users", "disable", "nobody@example.org"])
    assert unknown.exit_code != 0 and "No staff user" in unknown.output


def test_cli_token_changes_are_audited(app):
    runner = app.test_cli_runner()
    created = runner.invoke(args=["tokens", "create", "--name", "backup", "--role", "analyst"])
    assert created.exit_code == 0, created.output
    [entry] = entries("token_created")
    assert entry.actor == "cli"
    assert runner.invoke(args=["tokens", "revoke", str(entry.subject_id)]).exit_code == 0
    assert entries("token_revoked")[0].subject_id == entry.subject_id


def test_the_cli_sets_a_new_password_that_signs_in(app, make_staff_user):
    user = make_staff_user(Role.CAMPAIGNER)
    old_session = user.session_token
    result = app.test_cli_runner().invoke(
        args=["users", "set-password", user.email, "--password", "generate"]
    )
    assert result.exit_code == 0, result.output
    new_password = result.output.strip().splitlines()[-1]
    assert accounts.authenticate(user.email, new_password) is user
    assert accounts.authenticate(user.email, "correct horse battery staple") is None
    assert user.session_token != old_session  # signed out everywhere
    assert entries("password_set")[0].actor == "cli"


def test_the_cli_creates_a_user_with_a_generated_password_printed_once(app):
    result = app.test_cli_runner().invoke(
        args=[
            "users",
            "create",
            "New.Person@Example.org",
            "--role",
            "analyst",
            "--password",
            "generate",
        ]
    )
    assert result.exit_code == 0, result.output
    password = result.stdout.strip()
    user = accounts.authenticate("new.person@example.org", password)
    assert user is not None and user.role == Role.ANALYST
    again = app.test_cli_runner().invoke(
        args=["users", "create", "new.person@example.org", "--role", "admin"]
    )
    assert again.exit_code != 0 and "already a staff user" in again.output
