"""RQ job for confirmation mails: a thin wrapper around app.campaigns.confirmations."""

from __future__ import annotations

from app.campaigns.confirmations import send_confirmation
from workers.runtime import job_context


def send_action_confirmation(pending_id: int) -> str:
    """Mail the link that confirms a held action to the address it was typed with."""
    with job_context() as settings:
        return send_confirmation(pending_id, settings)
