"""RQ job for campaign letters: a thin wrapper around app.campaigns.letters."""

from __future__ import annotations

from app.campaigns.letters import deliver_letter
from workers.runtime import job_context


def send_letter(letter_id: int) -> str:
    """Send one supporter's letter to its target; the letter row records any wait or retry."""
    with job_context() as settings:
        return deliver_letter(letter_id, settings).status
