"""Signing in and out, password reset links, and two-factor sign-in for every staff user."""

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
from wtforms.validators import DataRequired, Length, ValidationError

from app.auth import accounts, audit, totp
from app.auth.accounts import AccountError, ResetLinkError
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
from app.staff.forms import show_errors

blueprint = staff_blueprint("staff_account", __name__, url_prefix="/staff")
PENDING_TWO_FACTOR = "staff_pending_user"
PENDING_TOTP_SECRET = "staff_pending_totp_secret"
TOO_MANY_ATTEMPTS = "Too many sign-in attempts. Wait a few minutes, then try again."
TOO_MANY_RESETS = "Too many reset requests. Wait a few minutes, then try again."
RESET_SENT = (
    "If that address has an account, a link to reset the password is on its way. "
    "It works for an hour."
)


def _settings():
    return current_app.config["CLARION"]


def _login_rate() -> str:
    return _settings().staff_login_rate


def _login_email_key() -> str:
    return "staff-login:" + accounts.normalise_email(request.form.get("email", ""))[:320]


def _reset_email_key() -> str:
    return "staff-reset:" + accounts.normalise_email(request.form.get("email", ""))[:320]


def _status(form: FlaskForm) -> int:
    return 422 if form.errors else 200


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


class CodeForm(FlaskForm):
    code = StringField(
        "Six-digit code from your authenticator app",
        validators=[DataRequired(), Length(min=6, max=8)],
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric"},
    )


class ForgotPasswordForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=320)])


class NewPasswordForm(FlaskForm):
    password = PasswordField(
        "New password",
        validators=[DataRequired(), Length(max=1024)],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        "The same password again",
        validators=[DataRequired(), Length(max=1024)],
        render_kw={"autocomplete": "new-password"},
    )

    def validate_confirm(self, field):
        if field.data != self.password.data:
            raise ValidationError("The two passwords are not the same.")


class TurnOffTwoFactorForm(CodeForm):
    password = PasswordField(
        "Your password",
        validators=[DataRequired(), Length(max=1024)],
        render_kw={"autocomplete": "current-password"},
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
        if totp.check_two_factor(user, form.code.data):
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
    """Set up two-factor sign-in (required for admins in production), or offer to turn it off."""
    user = current_staff()
    if user.has_two_factor:
        return render_template(
            "staff/account/two_factor_on.html",
            user=user,
            form=TurnOffTwoFactorForm(),
            required=totp.two_factor_required(user, _settings()),
        )
    # The secret waits in the (signed) session until a code proves the app has it.
    secret = session.get(PENDING_TOTP_SECRET) or totp.new_totp_secret()
    session[PENDING_TOTP_SECRET] = secret
    form = CodeForm()
    if form.validate_on_submit():
        try:
            totp.enable_two_factor(user, secret, form.code.data)
        except AccountError as exc:
            show_errors(form, exc, "code")
        else:
            session.pop(PENDING_TOTP_SECRET, None)
            audit.record(
                actor(), "two_factor_enabled", subject_type="staff_user", subject_id=user.id
            )
            db.session.commit()
            flash(
                "Two-factor sign-in is on. You will be asked for a code when you sign in.",
                "success",
            )
            return redirect(url_for(".account"))
    return render_template(
        "staff/account/two_factor.html",
        user=user,
        form=form,
        secret_groups=[secret[i : i + 4] for i in range(0, len(secret), 4)],
        uri=totp.totp_uri(user, secret),
        required=totp.two_factor_required(user, _settings()),
    ), _status(form)


@blueprint.post("/account/two-factor/off")
@requires(Role.ANALYST)
# It checks the password: as slow to guess through as the sign-in form.
@limiter.limit(_login_rate, error_message=TOO_MANY_ATTEMPTS)
def turn_off_two_factor():
    user = current_staff()
    if not user.has_two_factor:
        return redirect(url_for(".two_factor"))
    form = TurnOffTwoFactorForm()
    if form.validate_on_submit():
        try:
            totp.turn_off_two_factor(user, form.password.data, form.code.data, _settings())
        except AccountError as exc:
            show_errors(form, exc, "code")
        else:
            audit.record(
                actor(), "two_factor_disabled", subject_type="staff_user", subject_id=user.id
            )
            db.session.commit()
            flash("Two-factor sign-in is off.", "info")
            return redirect(url_for(".account"))
    return render_template(
        "staff/account/two_factor_on.html",
        user=user,
        form=form,
        required=totp.two_factor_required(user, _settings()),
    ), 422


@blueprint.route("/forgot-password", methods=["GET", "POST"])
@public
@limiter.limit(_login_rate, methods=["POST"], error_message=TOO_MANY_RESETS)
@limiter.limit(
    _login_rate, methods=["POST"], key_func=_reset_email_key, error_message=TOO_MANY_RESETS
)
def forgot_password():
    """Mail a reset link; the answer is the same whether or not the address has an account."""
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        user = accounts.request_password_reset(form.email.data, _settings())
        if user is not None:
            audit.record(
                "public",
                "password_reset_requested",
                subject_type="staff_user",
                subject_id=user.id,
                detail=f"from {request.remote_addr}",
            )
        db.session.commit()
        flash(RESET_SENT, "info")
        return redirect(url_for(".login"))
    return render_template("staff/account/forgot_password.html", form=form), _status(form)


@blueprint.route("/reset-password/<token>", methods=["GET", "POST"])
@public
@limiter.limit(_login_rate, methods=["POST"], error_message=TOO_MANY_ATTEMPTS)
def reset_password(token: str):
    """Choose a new password from a mailed link (a reset, or an invitation's first password)."""
    settings = _settings()
    try:
        user, kind = accounts.check_reset_link(token, settings.secret_keys)
    except ResetLinkError as exc:
        return render_template(
            "staff/account/reset_link_problem.html", title=exc.title, message=exc.message
        ), exc.status
    form = NewPasswordForm()
    if form.validate_on_submit():
        try:
            accounts.reset_password(token, form.password.data, settings.secret_keys)
        except AccountError as exc:
            show_errors(form, exc, "password")
        else:
            audit.record(
                f"staff:{user.email}",
                "password_set" if kind == accounts.MAIL_INVITE else "password_reset",
                subject_type="staff_user",
                subject_id=user.id,
            )
            db.session.commit()
            logout_user()
            session.clear()
            flash("Your password is set. Sign in with it now.", "success")
            return redirect(url_for(".login"))
    return render_template(
        "staff/account/reset_password.html",
        form=form,
        user=user,
        invited=kind == accounts.MAIL_INVITE,
        min_length=accounts.MIN_PASSWORD_LENGTH,
    ), _status(form)
