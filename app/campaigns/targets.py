"""A campaign's targets: the officials supporters write to, and who can still be removed."""

from __future__ import annotations

from sqlalchemy import select

from app.campaigns.models import Campaign, CampaignTarget, Letter
from app.campaigns.services import CampaignError
from app.errors import Conflict
from app.extensions import db


def target_of(campaign: Campaign, target_id: int) -> CampaignTarget | None:
    return next((t for t in campaign.targets if t.id == target_id), None)


UNREACHABLE = "Give an email address or a postal address."


def _check_target_reachable(data: dict) -> None:
    if not (data.get("email") or data.get("postal_address")):
        raise CampaignError("The target cannot be reached.", {"postal_address": [UNREACHABLE]})


def check_targets_reachable(targets: list[dict]) -> None:
    """Refuse targets with neither an email nor a postal address: no letter could reach them."""
    unreachable = {
        n: {"postal_address": [UNREACHABLE]}
        for n, t in enumerate(targets)
        if not (t.get("email") or t.get("postal_address"))
    }
    if unreachable:
        raise CampaignError("A target cannot be reached.", {"targets": unreachable})


def add_target(campaign: Campaign, data: dict) -> CampaignTarget:
    """Add a target after the others; letters of later actions go to it too."""
    _check_target_reachable(data)
    position = max((t.position for t in campaign.targets), default=-1) + 1
    target = CampaignTarget(position=position, **data)
    campaign.targets.append(target)
    db.session.flush()
    return target


def update_target(target: CampaignTarget, data: dict) -> None:
    """Change a target's details; its letters not yet sent go to the new address."""
    _check_target_reachable(data)
    for name, value in data.items():
        setattr(target, name, value)


def remove_target(campaign: Campaign, target: CampaignTarget) -> None:
    """Remove a target no letter was written to yet (Conflict otherwise: keep the record)."""
    written = db.session.scalar(select(Letter.id).where(Letter.target_id == target.id).limit(1))
    if written is not None:
        raise Conflict(
            "Supporters have written to this target: it can no longer be removed.",
            code="target_has_letters",
        )
    campaign.targets.remove(target)
    db.session.flush()
