"""RQ job for campaign letters: a thin wrapper around app.campaigns.letters."""

from __future__ import annotations

from workers.runtime import job_context


def send_letter(letter_id: int) -> str:
    """Send one supporter's letter to its target, or wait for the target's hourly cap."""
    from app.campaigns.letters import send_or_reschedule

    with job_context() as settings:
        return send_or_reschedule(letter_id, settings).status
