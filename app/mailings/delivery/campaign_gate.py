"""What mailings may know of the campaign a mailing links to: enough to refuse sending dead links.

Campaigns sit above mailings, so mailings never reads the Campaign row itself: it asks through a
function the edge hands it (create_app wires the campaigns domain's answer in app/routes.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class CampaignGate:
    """A campaign as the send check sees it; `is_open` is the campaigns domain's own rule."""

    id: int
    title: str
    status: str  # "draft", "open" or "closed"
    deadline: datetime | None
    is_open: bool


_campaign_gate: Callable[[int], CampaignGate | None] | None = None


def answer_campaign_gate(answer: Callable[[int], CampaignGate | None]) -> None:
    """Set the function that describes a campaign by id (None: there is no such campaign)."""
    global _campaign_gate
    _campaign_gate = answer


def linked_campaign(campaign_id: int | None) -> CampaignGate | None:
    """Return the campaign a mailing's action links lead to (None: none linked, or deleted)."""
    if campaign_id is None:
        return None
    if _campaign_gate is None:
        # Allowing the send instead could mail everyone a dead "Act now" link.
        raise RuntimeError("Nothing answers whether a campaign is open: see app/routes.py.")
    return _campaign_gate(campaign_id)
