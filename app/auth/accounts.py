"""Staff accounts: passwords, sign-in, password reset links, sign-out everywhere.

Two-factor codes are in app/auth/totp.py.

Plain functions over the database; the staff web app (app/staff) and `clarion users` call them.
"""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, select

from app.auth import audit
from app.auth.models import Role, StaffUser
from app.config import Settings
from app.db import utcnow
from app.errors import DomainError, NotFound
from app.extensions import db
from app.jobs import SEND_STAFF_MAIL, enqueue

# argon2id with the library's defaults (RFC 9106's second recommended profile).
_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 12
RESET_LINK_MAX_AGE = 60 * 60  # seconds a password reset link stays good
# An invitation waits for someone to read their mail, so it lasts longer than a reset link.
INVITE_LINK_MAX_AGE = 3 * 24 * 60 * 60
RESET_SALT = "clarion.staff.password-reset"
# What a link was mailed for: the invitation and the reset share the token and the page.
MAIL_RESET = "reset"
MAIL_INVITE = "invite"
LINK_MAX_AGE = {MAIL_RESET: RESET_LINK_MAX_AGE, MAIL_INVITE: INVITE_LINK_MAX_AGE}
# Argon2 hashes start with "$argon2": a hash that does not can never verify (InvalidHashError).
UNUSABLE_PASSWORD_PREFIX = "!unusable:"
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
        message = f"Choose a password of at least {MIN_PASSWORD_LENGTH} characters."
        raise AccountError(message, {"password": message})


def generate_password() -> str:
    return secrets.token_urlsafe(15)  # 20 characters, 120 bits


def find_user_by_email(email: str) -> StaffUser | None:
    return db.session.scalar(
        select(StaffUser).where(func.lower(StaffUser.email) == normalise_email(email))
    )


def get_user(user_id: int) -> StaffUser | None:
    return db.session.get(StaffUser, user_id)


def existing_user(user_id: int) -> StaffUser:
    """Return the user with this id, or raise NotFound (a 404 page)."""
    user = get_user(user_id)
    if user is None:
        raise NotFound("There is no staff user with that id.")
    return user


def all_users() -> list[StaffUser]:
    return list(db.session.scalars(select(StaffUser).order_by(StaffUser.email)))


def record_account_change(actor: str | None, action: str, user: StaffUser, detail: str) -> None:
    """The audit entry for a change to a staff account, whichever edge (staff app, CLI) made
    it; None: a change nobody asked for by hand (demo data, tests' fixtures)."""
    if actor is not None:
        audit.record(actor, action, subject_type="staff_user", subject_id=user.id, detail=detail)


def create_user(
    email: str,
    role: Role | str,
    *,
    password: str | None,
    name: str = "",
    actor: str | None = None,
) -> StaffUser:
    """Create a staff user; raises AccountError for a taken email or a weak password.

    With `password=None` nobody can sign in as the user until a reset link sets one. Audited
    as `actor`'s "user_created" when an actor is given.
    """
    email = normalise_email(email)
    if "@" not in email or len(email) > 320:
        details = {"email": "Enter an email address, like name@example.org."}
        raise AccountError(f"{email!r} is not an email address.", details)
    if find_user_by_email(email) is not None:
        message = f"There is already a staff user with the email {email}."
        raise AccountError(message, {"email": message})
    if password is None:
        password_hash = UNUSABLE_PASSWORD_PREFIX + secrets.token_urlsafe(24)
    else:
        check_password_rules(password)
        password_hash = _hasher.hash(password)
    user = StaffUser(
        email=email,
        name=(name or "").strip()[:200],
        role=Role(role),
        password_hash=password_hash,
        session_token=new_session_token(),
    )
    db.session.add(user)
    db.session.flush()
    how = "invited" if password is None else "created"
    record_account_change(actor, "user_created", user, f"{how} {user.email} as {user.role}")
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
    if password_hash.startswith(UNUSABLE_PASSWORD_PREFIX):
        # Take as long as a real check, so timing does not tell which accounts are invited.
        password_hash = _DUMMY_HASH
        password = "\0" + (password or "")  # never the dummy's secret
    try:
        return _hasher.verify(password_hash, password or "")
    except (VerificationError, InvalidHashError):
        return False


def set_password(user: StaffUser, password: str, *, actor: str | None = None) -> None:
    """Change the password and sign the user out of every other session.

    `actor`: someone else set it (an admin at the command line): audited as "password_set".
    """
    check_password_rules(password)
    user.password_hash = _hasher.hash(password)
    sign_out_everywhere(user)
    record_account_change(actor, "password_set", user, user.email)


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


def set_role(user: StaffUser, role: Role | str, *, actor: str) -> None:
    """Change the role; refused if it would leave no active admin. Nothing when unchanged."""
    role = Role(role)
    if role == user.role:
        return
    if role != Role.ADMIN:
        _keep_an_admin(user)
    before, user.role = user.role, role
    sign_out_everywhere(user)  # the new role applies from the next sign-in, everywhere
    record_account_change(actor, "role_changed", user, f"{user.email}: {before} → {role}")


def disable_user(user: StaffUser, *, actor: str, by: StaffUser | None = None) -> None:
    """Disable an account; nobody disables themselves or the last active admin."""
    if by is not None and by.id == user.id:
        raise AccountError("You cannot disable your own account. Ask another admin.")
    _keep_an_admin(user)
    user.disabled_at = utcnow()
    sign_out_everywhere(user)
    record_account_change(actor, "user_disabled", user, user.email)


def enable_user(user: StaffUser, *, actor: str) -> None:
    user.disabled_at = None
    record_account_change(actor, "user_enabled", user, user.email)


def _keep_an_admin(user: StaffUser) -> None:
    """Refuse a change that takes away the last active admin (nobody could manage users)."""
    if user.role != Role.ADMIN or not user.is_active:
        return
    # Locking the admins' rows makes two admins demoting each other at once take turns, so
    # the second sees the first one's change and is refused.
    admins = db.session.scalars(
        select(StaffUser.id)
        .where(StaffUser.role == Role.ADMIN, StaffUser.disabled_at.is_(None))
        .with_for_update()
    ).all()
    if not set(admins) - {user.id}:
        raise AccountError("This is the last active admin. Make someone else an admin first.")


def account_state(user: StaffUser) -> str:
    """Return "disabled", "invited" (no password chosen yet) or "active"."""
    if not user.is_active:
        return "disabled"
    if user.password_hash.startswith(UNUSABLE_PASSWORD_PREFIX):
        return "invited"
    return "active"


def invite_user(
    email: str, role: Role | str, *, name: str, settings: Settings, actor: str
) -> StaffUser:
    """Create a user nobody can sign in as until they choose a password from the mailed link."""
    user = create_user(email, role, password=None, name=name, actor=actor)
    enqueue(SEND_STAFF_MAIL, settings, user.id, MAIL_INVITE, after_commit_of=db.session)
    return user


def request_password_reset(email: str, settings: Settings) -> StaffUser | None:
    """Mail a reset link if an active account has this email; the caller says the same either way."""
    user = find_user_by_email(email)
    if user is None or not user.is_active:
        return None
    kind = MAIL_INVITE if account_state(user) == "invited" else MAIL_RESET
    enqueue(SEND_STAFF_MAIL, settings, user.id, kind, after_commit_of=db.session)
    return user


def check_password(user: StaffUser, password: str) -> bool:
    return _verify(user.password_hash, password)


# --- Password reset links -------------------------------------------------------------------


class ResetLinkError(AccountError):
    """A reset or invitation link that cannot be used: forged (400), expired or used (410)."""

    code = "reset_link_error"
    title = "This link cannot be used"


def _reset_serializer(secret_keys: tuple[str, ...]) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(list(reversed(secret_keys)), salt=RESET_SALT)


def _password_fingerprint(user: StaffUser) -> str:
    # Part of the link: once the password changes (the link is used), the link stops working.
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def make_reset_token(user: StaffUser, secret_keys: tuple[str, ...], kind: str = MAIL_RESET) -> str:
    data = {"u": user.id, "p": _password_fingerprint(user), "k": kind}
    return _reset_serializer(secret_keys).dumps(data)


def user_for_reset_token(
    token: str, secret_keys: tuple[str, ...], *, max_age: int | None = None
) -> StaffUser:
    """Return the user a reset link is for; ResetLinkError if it is forged, expired or used."""
    return check_reset_link(token, secret_keys, max_age=max_age)[0]


def check_reset_link(
    token: str, secret_keys: tuple[str, ...], *, max_age: int | None = None
) -> tuple[StaffUser, str]:
    """Return the user a link is for and what it was mailed for (MAIL_RESET or MAIL_INVITE)."""
    serializer = _reset_serializer(secret_keys)
    try:
        data, signed_at = serializer.loads(
            token, max_age=max_age or INVITE_LINK_MAX_AGE, return_timestamp=True
        )
    except SignatureExpired as exc:
        raise _expired() from exc
    except BadSignature as exc:
        raise _forged() from exc
    if not isinstance(data, dict) or not isinstance(data.get("u"), int):
        raise _forged()
    # Each kind of link has its own life; the signature's age was checked against the longest.
    kind = data.get("k") if data.get("k") in LINK_MAX_AGE else MAIL_RESET
    if (utcnow() - signed_at).total_seconds() > (max_age or LINK_MAX_AGE[kind]):
        raise _expired()
    user = db.session.get(StaffUser, data["u"])
    if user is None or not user.is_active or data.get("p") != _password_fingerprint(user):
        raise ResetLinkError(
            "This link has already been used, or the account has changed since. Ask for a new one.",
            status=410,
        )
    return user, kind


def _expired() -> ResetLinkError:
    return ResetLinkError("This link has expired. Ask for a new one.", status=410)


def _forged() -> ResetLinkError:
    return ResetLinkError(
        "This link is not valid. It may have been cut short when it was copied: open it again "
        "from the email, or ask for a new one.",
        status=400,
    )


def reset_password(token: str, password: str, secret_keys: tuple[str, ...]) -> StaffUser:
    """Set the password a valid link allows; the link then stops working (its fingerprint)."""
    user = user_for_reset_token(token, secret_keys)
    set_password(user, password)
    return user
