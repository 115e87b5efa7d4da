"""The staff app's campaign counts: a page of campaigns with their actions and letters, and a
campaign's letters by target and status (its page and its report)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from app.campaigns.models import Action, Campaign, Letter
from app.extensions import db

STAFF_PAGE_SIZE = 50


@dataclass
class CampaignOverview:
    campaign: Campaign
    actions: int
    letters: int


def campaign_overviews(after: int | None, limit: int = STAFF_PAGE_SIZE) -> list[CampaignOverview]:
    """Return a page of campaigns newest first, below id `after`, with their counts."""
    stmt = select(Campaign).order_by(Campaign.id.desc()).limit(limit)
    if after is not None:
        stmt = stmt.where(Campaign.id < after)
    campaigns = list(db.session.scalars(stmt))
    ids = [c.id for c in campaigns]
    actions = dict(
        db.session.execute(
            select(Action.campaign_id, func.count())
            .where(Action.campaign_id.in_(ids))
            .group_by(Action.campaign_id)
        ).all()
    )
    letters = dict(
        db.session.execute(
            select(Action.campaign_id, func.count())
            .join(Letter, Letter.action_id == Action.id)
            .where(Action.campaign_id.in_(ids))
            .group_by(Action.campaign_id)
        ).all()
    )
    return [CampaignOverview(c, actions.get(c.id, 0), letters.get(c.id, 0)) for c in campaigns]


def letter_counts(campaign_id: int) -> dict[int, dict[str, int]]:
    """Return {target id: {letter status: count}} for the campaign's letters."""
    rows = db.session.execute(
        select(Letter.target_id, Letter.status, func.count())
        .join(Action, Letter.action_id == Action.id)
        .where(Action.campaign_id == campaign_id)
        .group_by(Letter.target_id, Letter.status)
    )
    counts: dict[int, dict[str, int]] = {}
    for target_id, status, count in rows:
        counts.setdefault(target_id, {})[status.value] = count
    return counts
