"""Staff accounts: passwords, sign-in, password reset links, two-factor codes, sign-out everywhere.

Plain functions over the database; the staff web app (app/staff) and `clarion users` call them.
"""

from __future__ import annotations

import hashlib
import secrets
import time

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, select

from app.auth.models import Role, StaffUser
from app.db import utcnow
from app.errors import DomainError
from app.extensions import db

# argon2id with the library's defaults (RFC 9106's second recommended profile).
_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 12
RESET_LINK_MAX_AGE = 60 * 60  # seconds a password reset link stays good
RESET_SALT = "clarion.staff.password-reset"
TOTP_ISSUER = "Clarion"
# Checked when nobody matches an email, so a wrong email costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class AccountError(DomainError):
    """A refusal about a staff account, said in words a person can act on."""

    code = "account_error"
    status = 422
    title = "That did not work"


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


def new_session_token() -> str:
    return secrets.token_urlsafe(24)


def check_password_rules(password: str) -> None:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise AccountError(f"Choose a password of at least {MIN_PASSWORD_LENGTH} characters.")


def generate_password() -> str:
    return secrets.token_urlsafe(15)  # 20 characters, 120 bits


def find_user_by_email(email: str) -> StaffUser | None:
    return db.session.scalar(
        select(StaffUser).where(func.lower(StaffUser.email) == normalise_email(email))
    )


def get_user(user_id: int) -> StaffUser | None:
    return db.session.get(StaffUser, user_id)


def all_users() -> list[StaffUser]:
    return list(db.session.scalars(select(StaffUser).order_by(StaffUser.email)))


def create_user(email: str, role: Role | str, *, password: str, name: str = "") -> StaffUser:
    """Create a staff user; raises AccountError for a taken email or a weak password."""
    email = normalise_email(email)
    if "@" not in email or len(email) > 320:
        raise AccountError(f"{email!r} is not an email address.")
    if find_user_by_email(email) is not None:
        raise AccountError(f"There is already a staff user with the email {email}.")
    check_password_rules(password)
    user = StaffUser(
        email=email,
        name=(name or "").strip()[:200],
        role=Role(role),
        password_hash=_hasher.hash(password),
        session_token=new_session_token(),
    )
    db.session.add(user)
    db.session.flush()
    return user


def authenticate(email: str, password: str) -> StaffUser | None:
    """Return the active user with this email and password, or None (in the same time either way)."""
    user = find_user_by_email(email)
    if user is None:
        _verify(_DUMMY_HASH, password)
        return None
    if not _verify(user.password_hash, password) or not user.is_active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password or "")
    except (VerificationError, InvalidHashError):
        return False


def set_password(user: StaffUser, password: str) -> None:
    """Change the password and sign the user out of every other session."""
    check_password_rules(password)
    user.password_hash = _hasher.hash(password)
    sign_out_everywhere(user)


def sign_out_everywhere(user: StaffUser) -> None:
    user.session_token = new_session_token()


def user_for_session_id(session_id: str) -> StaffUser | None:
    """Flask-Login's loader: "<id>:<session token>", refused once the token has been rotated."""
    user_id, _, token = (session_id or "").partition(":")
    if not user_id.isdigit() or not token:
        return None
    user = db.session.get(StaffUser, int(user_id))
    if user is None or not user.is_active:
        return None
    if not secrets.compare_digest(user.session_token, token):
        return None
    return user


def record_login(user: StaffUser) -> None:
    user.last_login_at = utcnow()


def set_role(user: StaffUser, role: Role | str) -> None:
    user.role = Role(role)
    sign_out_everywhere(user)  # the new role applies from the next sign-in, everywhere


def disable_user(user: StaffUser) -> None:
    user.disabled_at = utcnow()
    sign_out_everywhere(user)


def enable_user(user: StaffUser) -> None:
    user.disabled_at = None


# --- Password reset links -------------------------------------------------------------------


def _reset_serializer(secret_keys: tuple[str, ...]) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(list(reversed(secret_keys)), salt=RESET_SALT)


def _password_fingerprint(user: StaffUser) -> str:
    # Part of the link: once the password changes (the link is used), the link stops working.
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def make_reset_token(user: StaffUser, secret_keys: tuple[str, ...]) -> str:
    return _reset_serializer(secret_keys).dumps({"u": user.id, "p": _password_fingerprint(user)})


def user_for_reset_token(
    token: str, secret_keys: tuple[str, ...], *, max_age: int = RESET_LINK_MAX_AGE
) -> StaffUser:
    """Return the user a reset link is for; AccountError if it is forged, expired or used."""
    try:
        data = _reset_serializer(secret_keys).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise AccountError("This reset link has expired. Ask for a new one.") from exc
    except BadSignature as exc:
        raise AccountError("This reset link is not valid. Ask for a new one.") from exc
    if not isinstance(data, dict) or not isinstance(data.get("u"), int):
        raise AccountError("This reset link is not valid. Ask for a new one.")
    user = db.session.get(StaffUser, data["u"])
    if user is None or not user.is_active or data.get("p") != _password_fingerprint(user):
        raise AccountError("This reset link has already been used. Ask for a new one.")
    return user


# --- Two-factor codes (TOTP, RFC 6238) ------------------------------------------------------


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(user: StaffUser, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=TOTP_ISSUER)


def _matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    code = (code or "").replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    now = time.time() if now is None else now
    step = int(now) // totp.interval
    for candidate in (step, step - 1, step + 1):  # one step of clock drift either way
        if secrets.compare_digest(totp.generate_otp(candidate), code):
            return candidate
    return None


def enable_two_factor(user: StaffUser, secret: str, code: str) -> None:
    step = _matching_step(secret, code)
    if step is None:
        raise AccountError("That code does not match. Check the time on your phone and try again.")
    user.totp_secret = secret
    user.totp_last_step = step


def check_two_factor(user: StaffUser, code: str, now: float | None = None) -> bool:
    """True for a current code not used before; a code replayed within its window is refused."""
    if not user.totp_secret:
        return True
    step = _matching_step(user.totp_secret, code, now)
    if step is None or (user.totp_last_step is not None and step <= user.totp_last_step):
        return False
    user.totp_last_step = step
    return True


def disable_two_factor(user: StaffUser) -> None:
    user.totp_secret = None
    user.totp_last_step = None
