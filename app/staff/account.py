"""Signing in and out: password, then a two-factor code where the user has set one up."""

from __future__ import annotations

from flask import (
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from app.auth import accounts, audit
from app.auth.models import Role
from app.extensions import db, limiter
from app.staff.access import (
    actor,
    current_staff,
    public,
    remember_session,
    requires,
    safe_next_url,
    staff_blueprint,
)

blueprint = staff_blueprint("staff_account", __name__, url_prefix="/staff")
PENDING_TWO_FACTOR = "staff_pending_user"
TOO_MANY_ATTEMPTS = "Too many sign-in attempts. Wait a few minutes, then try again."


def _login_rate() -> str:
    return current_app.config["CLARION"].staff_login_rate


def _login_email_key() -> str:
    return "staff-login:" + accounts.normalise_email(request.form.get("email", ""))[:320]


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


class CodeForm(FlaskForm):
    code = StringField(
        "Six-digit code from your authenticator app",
        validators=[DataRequired(), Length(min=6, max=8)],
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric"},
    )


@blueprint.route("/login", methods=["GET", "POST"])
@public
@limiter.limit(_login_rate, methods=["POST"], error_message=TOO_MANY_ATTEMPTS)
@limiter.limit(
    _login_rate, methods=["POST"], key_func=_login_email_key, error_message=TOO_MANY_ATTEMPTS
)
def login():
    form = LoginForm()
    if form.validate_on_submit():
        user = accounts.authenticate(form.email.data, form.password.data)
        if user is None:
            form.password.errors.append("That email and password do not match an account.")
        elif user.has_two_factor:
            session[PENDING_TWO_FACTOR] = user.get_id()
            db.session.commit()
            return redirect(url_for(".login_code", next=request.args.get("next")))
        else:
            return _finish_login(user)
    return render_template("staff/account/login.html", form=form), 200 if not form.errors else 422


@blueprint.route("/login/code", methods=["GET", "POST"])
@public
@limiter.limit(_login_rate, methods=["POST"], error_message=TOO_MANY_ATTEMPTS)
def login_code():
    user = accounts.user_for_session_id(session.get(PENDING_TWO_FACTOR, ""))
    if user is None:
        return redirect(url_for(".login"))
    form = CodeForm()
    if form.validate_on_submit():
        if accounts.check_two_factor(user, form.code.data):
            session.pop(PENDING_TWO_FACTOR, None)
            return _finish_login(user)
        form.code.errors.append("That code is not right, or has been used. Try the next one.")
    return render_template("staff/account/login_code.html", form=form), (
        200 if not form.errors else 422
    )


def _finish_login(user):
    session.clear()  # a fresh session: nothing from before sign-in carries over
    login_user(user)
    remember_session()
    accounts.record_login(user)
    db.session.commit()
    return redirect(safe_next_url(request.args.get("next"), url_for("staff_dashboard.index")))


@blueprint.post("/logout")
@requires(Role.ANALYST)
def logout():
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for(".login"))


@blueprint.post("/account/sign-out-everywhere")
@requires(Role.ANALYST)
def sign_out_everywhere():
    user = current_staff()
    accounts.sign_out_everywhere(user)
    audit.record(actor(), "sign_out_everywhere", subject_type="staff_user", subject_id=user.id)
    db.session.commit()
    logout_user()
    session.clear()
    flash("You are signed out on every device.", "info")
    return redirect(url_for(".login"))


@blueprint.get("/account")
@requires(Role.ANALYST)
def account():
    return render_template("staff/account/account.html", user=current_staff())


@blueprint.route("/account/two-factor", methods=["GET", "POST"])
@requires(Role.ANALYST)
def two_factor():
    """Set up two-factor sign-in (filled in by the account work; required for admins in production)."""
    return render_template("staff/account/two_factor.html", user=current_staff())


@blueprint.route("/forgot-password", methods=["GET", "POST"])
@public
def forgot_password():
    """Ask for a password reset link (filled in by the account work)."""
    return render_template("staff/account/forgot_password.html")
