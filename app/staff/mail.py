"""Mail to staff about their account: a password reset link, or an invitation to choose one.

Queued by app/auth/accounts.py (SEND_STAFF_MAIL, after commit) and sent by the RQ job in
workers/staff_mail.py through the same SMTP transport as every other transactional mail.
The link is signed when the mail is built, so a retried job mails a link that still works.
"""

from __future__ import annotations

from email.utils import parseaddr

from app.auth import accounts
from app.auth.models import StaffUser
from app.config import Settings
from app.staff.access import STAFF_PREFIX
from mailers.plain import build_plain_message
from mailers.transport import PermanentFailure, SmtpTransport


def reset_url(settings: Settings, user: StaffUser, kind: str = accounts.MAIL_RESET) -> str:
    token = accounts.make_reset_token(user, settings.secret_keys, kind)
    return f"{settings.base_url}{STAFF_PREFIX}/reset-password/{token}"


def _hours(seconds: int) -> str:
    hours = seconds // 3600
    return "1 hour" if hours == 1 else f"{hours} hours"


def account_message(user: StaffUser, kind: str, settings: Settings) -> tuple[bytes, str]:
    """Return the mail (bytes, Message-ID) with the link to set a password."""
    _, sender = parseaddr(settings.mail_from)
    link = reset_url(settings, user, kind)
    lasts = _hours(accounts.LINK_MAX_AGE[kind])
    greeting = f"Hello {user.name}," if user.name else "Hello,"
    if kind == accounts.MAIL_INVITE:
        subject = f"You are invited to Clarion at {settings.organisation_name}"
        body = (
            f"{greeting}\n\n"
            f"An admin at {settings.organisation_name} has given you a Clarion staff account"
            f" ({user.email}, role {user.role.value}).\n\n"
            "To start, open this link and choose your password:\n\n"
            f"{link}\n\n"
            f"The link works once, for {lasts}. If you did not expect this invitation, ignore"
            " this email.\n"
        )
    else:
        subject = "Reset your Clarion password"
        body = (
            f"{greeting}\n\n"
            f"Someone, we hope it was you, asked to reset the password of the Clarion staff"
            f" account {user.email}.\n\n"
            "To choose a new password, open this link:\n\n"
            f"{link}\n\n"
            f"The link works once, for {lasts}. Setting a new password signs you out on every"
            " device. If you did not ask for this, ignore this email: your password stays as"
            " it is.\n"
        )
    return build_plain_message(
        sender=sender,
        to=user.email,
        subject=subject,
        body=body + f"\n{settings.organisation_name}\n",
        from_name=settings.organisation_name,
        message_id_domain=sender.rpartition("@")[2] or "localhost",
        extra_headers={"Auto-Submitted": "auto-generated"},
    )


def send_account_mail(user_id: int, kind: str, settings: Settings, *, transport=None) -> str:
    """Mail the link; return sent, failed (refused for good) or done (nothing to send).

    Temporary SMTP failures raise, so RQ retries.
    """
    user = accounts.get_user(user_id)
    if user is None or not user.is_active or kind not in accounts.LINK_MAX_AGE:
        return "done"
    data, _ = account_message(user, kind, settings)
    own = transport is None
    transport = transport or SmtpTransport(settings.smtp)
    try:
        transport.send(parseaddr(settings.mail_from)[1], user.email, data)
    except PermanentFailure:
        return "failed"
    finally:
        if own:
            transport.close()
    return "sent"
