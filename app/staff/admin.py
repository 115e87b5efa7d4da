"""Staff pages: Admin. Staff users (invite, role, disable), API tokens and the audit log."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from wtforms import EmailField, SelectField, StringField
from wtforms.fields import SelectChoice
from wtforms.validators import DataRequired, Length

from app.auth import accounts, audit, services, totp
from app.auth.accounts import AccountError
from app.auth.models import Role
from app.errors import DomainError
from app.extensions import db
from app.security import parse_id
from app.staff.access import actor, current_staff, requires, staff_blueprint
from app.staff.forms import show_errors
from app.staff.mail import reset_url

blueprint = staff_blueprint("staff_admin", __name__, url_prefix="/staff/admin")
AUDIT_PAGE_SIZE = 50
# The secret of a token just created, kept only until the next page shows it.
NEW_TOKEN_SECRET = "staff_new_token"
ROLE_CHOICES = [
    SelectChoice(Role.ANALYST.value, "Analyst: reads supporters, mailings and results"),
    SelectChoice(Role.CAMPAIGNER.value, "Campaigner: also imports, edits and sends mailings"),
    SelectChoice(Role.ADMIN.value, "Admin: also manages staff users, API tokens, audit log"),
]


class InviteForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=320)])
    name = StringField("Name", validators=[Length(max=200)])
    role = SelectField("Role", choices=ROLE_CHOICES, default=Role.ANALYST.value)


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=ROLE_CHOICES)


class TokenForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    role = SelectField("Role", choices=ROLE_CHOICES, default=Role.ANALYST.value)


# --- Staff users -----------------------------------------------------------------------------


@blueprint.get("/")
@requires(Role.ADMIN)
def index():
    return render_template(
        "staff/admin/index.html", users=accounts.all_users(), state=accounts.account_state
    )


@blueprint.route("/users/invite", methods=["GET", "POST"])
@requires(Role.ADMIN)
def invite():
    settings = current_app.config["CLARION"]
    form = InviteForm()
    if form.validate_on_submit():
        try:
            user = accounts.invite_user(
                form.email.data,
                form.role.data,
                name=form.name.data,
                settings=settings,
                actor=actor(),
            )
        except AccountError as exc:
            show_errors(form, exc, "email")
        else:
            db.session.commit()
            flash(f"{user.email} is invited: a link to choose a password is on its way.", "success")
            if not settings.is_production:
                # No real mail leaves a local setup: the admin can pass the link on by hand.
                link = reset_url(settings, user, accounts.MAIL_INVITE)
                flash(f"Invitation link (shown outside production only): {link}", "info")
            return redirect(url_for(".user", user_id=user.id))
    return render_template("staff/admin/invite.html", form=form), 422 if form.errors else 200


@blueprint.get("/users/<int:user_id>")
@requires(Role.ADMIN)
def user(user_id: int):
    person = accounts.existing_user(user_id)
    return _user_page(person, RoleForm(role=person.role.value))


def _user_page(person, role_form: RoleForm, status: int = 200):
    return render_template(
        "staff/admin/user.html",
        person=person,
        state=accounts.account_state(person),
        role_form=role_form,
        is_me=person.id == current_staff().id,
    ), status


@blueprint.post("/users/<int:user_id>/role")
@requires(Role.ADMIN)
def change_role(user_id: int):
    person = accounts.existing_user(user_id)
    form = RoleForm()
    if not form.validate_on_submit():
        return _user_page(person, form, 422)
    if form.role.data == person.role.value:
        return redirect(url_for(".user", user_id=person.id))
    try:
        accounts.set_role(person, form.role.data, actor=actor())
    except AccountError as exc:
        show_errors(form, exc, "role")
        return _user_page(person, form, 422)
    db.session.commit()
    flash(f"{person.email} is now {person.role}, signed out everywhere to start anew.", "success")
    return redirect(url_for(".user", user_id=person.id))


@blueprint.post("/users/<int:user_id>/disable")
@requires(Role.ADMIN)
def disable(user_id: int):
    person = accounts.existing_user(user_id)
    try:
        accounts.disable_user(person, by=current_staff(), actor=actor())
    except AccountError as exc:
        flash(exc.message, "error")
        return redirect(url_for(".user", user_id=person.id))
    db.session.commit()
    flash(f"{person.email} is disabled and signed out everywhere.", "success")
    return redirect(url_for(".user", user_id=person.id))


@blueprint.post("/users/<int:user_id>/enable")
@requires(Role.ADMIN)
def enable(user_id: int):
    person = accounts.existing_user(user_id)
    accounts.enable_user(person, actor=actor())
    db.session.commit()
    flash(f"{person.email} can sign in again.", "success")
    return redirect(url_for(".user", user_id=person.id))


@blueprint.post("/users/<int:user_id>/reset-two-factor")
@requires(Role.ADMIN)
def reset_two_factor(user_id: int):
    person = accounts.existing_user(user_id)
    totp.reset_two_factor(person, actor=actor())
    db.session.commit()
    flash(f"Two-factor sign-in is off for {person.email}, who is signed out everywhere.", "success")
    return redirect(url_for(".user", user_id=person.id))


# --- API tokens ------------------------------------------------------------------------------


@blueprint.route("/tokens", methods=["GET", "POST"])
@requires(Role.ADMIN)
def tokens():
    form = TokenForm()
    if form.validate_on_submit():
        try:
            token, secret = services.create_token(form.name.data, form.role.data, actor=actor())
        except DomainError as exc:
            show_errors(form, exc, "name")
        else:
            db.session.commit()
            session[NEW_TOKEN_SECRET] = {"id": token.id, "secret": secret}
            return redirect(url_for(".token_created", token_id=token.id))
    return render_template(
        "staff/admin/tokens.html", tokens=services.all_tokens(), form=form
    ), 422 if form.errors else 200


@blueprint.get("/tokens/<int:token_id>/created")
@requires(Role.ADMIN)
def token_created(token_id: int):
    token = services.existing_token(token_id)
    waiting = session.get(NEW_TOKEN_SECRET) or {}
    secret = None
    if waiting.get("id") == token.id:
        secret = session.pop(NEW_TOKEN_SECRET)["secret"]  # shown this once, then forgotten
    return render_template("staff/admin/token_created.html", token=token, secret=secret)


@blueprint.post("/tokens/<int:token_id>/revoke")
@requires(Role.ADMIN)
def revoke_token(token_id: int):
    token = services.existing_token(token_id)
    if token.is_active:
        services.revoke_token(token, actor=actor())
        db.session.commit()
        flash(f"The token “{token.name}” is revoked: the API refuses it from now on.", "success")
    return redirect(url_for(".tokens"))


# --- Audit log -------------------------------------------------------------------------------


@blueprint.get("/audit")
@requires(Role.ADMIN)
def audit_log():
    action = request.args.get("action", "")[:80] or None
    # Newest first: ?after=<id> continues after the last entry of the page before.
    after = parse_id(request.args.get("after", ""))
    entries = audit.recent_entries(limit=AUDIT_PAGE_SIZE + 1, before_id=after, action=action)
    more = len(entries) > AUDIT_PAGE_SIZE
    entries = entries[:AUDIT_PAGE_SIZE]
    return render_template(
        "staff/admin/audit.html",
        entries=entries,
        actions=audit.known_actions(),
        action=action,
        next_after=entries[-1].id if more else None,
    )
