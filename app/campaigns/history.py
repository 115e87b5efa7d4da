"""What one supporter did on campaigns: the actions part of a supporter's page. Read-only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.campaigns.models import Action, Campaign, Letter, LetterStatus
from app.extensions import db

RECENT_ACTIONS = 50


@dataclass(frozen=True)
class LetterSent:
    target_name: str
    status: LetterStatus
    sent_at: datetime | None


@dataclass(frozen=True)
class ActionTaken:
    campaign_id: int
    campaign_title: str
    channel: str
    mailing_id: int | None
    created_at: datetime
    letters: list[LetterSent]


def actions_taken(supporter_id: int, *, limit: int = RECENT_ACTIONS) -> list[ActionTaken]:
    """Return the supporter's most recent campaign actions, newest first, with their letters."""
    rows = db.session.execute(
        select(Action, Campaign.title)
        .join(Campaign, Campaign.id == Action.campaign_id)
        .where(Action.supporter_id == supporter_id)
        .options(selectinload(Action.letters).selectinload(Letter.target))
        .order_by(Action.id.desc())
        .limit(limit)
    ).all()
    return [
        ActionTaken(
            campaign_id=action.campaign_id,
            campaign_title=title,
            channel=action.channel,
            mailing_id=action.mailing_id,
            created_at=action.created_at,
            letters=[
                LetterSent(
                    target_name=letter.target.name, status=letter.status, sent_at=letter.sent_at
                )
                for letter in action.letters
            ],
        )
        for action, title in rows
    ]
