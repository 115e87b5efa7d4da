"""Supporter services: plain functions callable from views, jobs, the CLI and tests."""

from __future__ import annotations

from app.supporters.models import SubscriptionChange, SubscriptionStatus, Supporter


def change_status(
    supporter: Supporter,
    new_status: SubscriptionStatus,
    *,
    channel: str,
    actor: str | None = None,
    detail: str | None = None,
) -> bool:
    """Set a supporter's subscription status and record it in the consent history.

    Return False (and record nothing) when the status is already `new_status`. Does not commit.
    """
    new_status = SubscriptionStatus(new_status)
    if supporter.status == new_status:
        return False
    supporter.history.append(
        SubscriptionChange(
            old_status=supporter.status,
            new_status=new_status,
            channel=channel,
            actor=actor,
            detail=detail,
        )
    )
    supporter.status = new_status
    return True
