"""RQ job for staff account mail: a thin wrapper around app.staff.mail."""

from __future__ import annotations

from app.staff.mail import send_account_mail
from workers.runtime import job_context


def send_staff_mail(user_id: int, kind: str) -> str:
    """Mail a staff user the link that sets their password (a reset or an invitation)."""
    with job_context() as settings:
        return send_account_mail(user_id, kind, settings)
