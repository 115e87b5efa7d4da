"""Staff two-factor sign-in: TOTP codes (RFC 6238), each accepted once.

Plain functions over a staff account, like app/auth/accounts.py; the staff web app's account
and admin pages and `clarion users` call them.
"""

from __future__ import annotations

import secrets
import time

import pyotp

from app.auth.accounts import (
    AccountError,
    check_password,
    record_account_change,
    sign_out_everywhere,
)
from app.auth.models import Role, StaffUser
from app.config import Settings

TOTP_ISSUER = "Clarion"


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(user: StaffUser, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=TOTP_ISSUER)


def _matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    code = (code or "").replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    codes = pyotp.TOTP(secret)
    now = time.time() if now is None else now
    step = int(now) // codes.interval
    for candidate in (step, step - 1, step + 1):  # one step of clock drift either way
        if secrets.compare_digest(codes.generate_otp(candidate), code):
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


def reset_two_factor(user: StaffUser, *, actor: str) -> None:
    """For a lost phone: turn two-factor off and end the sessions (one may be on that phone)."""
    disable_two_factor(user)
    sign_out_everywhere(user)
    record_account_change(actor, "two_factor_reset", user, user.email)


def two_factor_required(user: StaffUser, settings: Settings) -> bool:
    """Admins must use two-factor sign-in in production (app/staff/access.py enforces it)."""
    return settings.is_production and user.role == Role.ADMIN


def turn_off_two_factor(user: StaffUser, password: str, code: str, settings: Settings) -> None:
    """Turn two-factor off, proven by the password and a current code; AccountError naming the field."""
    if two_factor_required(user, settings):
        raise AccountError("Admins must keep two-factor sign-in on.")
    if not check_password(user, password):
        raise AccountError(
            "That password is not right.", {"password": "That password is not right."}
        )
    if not check_two_factor(user, code):
        message = "That code is not right, or has been used. Try the next one."
        raise AccountError(message, {"code": message})
    disable_two_factor(user)
