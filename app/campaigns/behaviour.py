"""Segment conditions about actions: who acted on a campaign, and who has gone quiet (sunset).

"Did not act on X" is everyone without an action on X, whether or not they were ever mailed
about it: the rest of the segment (lists, tags, "was sent mailing M") narrows it down.
"""

from __future__ import annotations

import calendar
from datetime import datetime

from sqlalchemy import ColumnElement, exists

from app.campaigns.models import Action, Campaign
from app.db import utcnow
from app.extensions import db
from app.supporters.behaviours import register_behaviour
from app.supporters.models import Supporter
from app.tracking.behaviour import read_mail_since, received_mail_since


def _acted_on(campaign_id: int) -> ColumnElement:
    # The unique key (campaign_id, supporter_id) answers this from its index.
    return exists().where(Action.campaign_id == campaign_id, Action.supporter_id == Supporter.id)


def acted_on_campaign(params: dict) -> ColumnElement:
    """SQL: the supporter acted on the campaign."""
    return _acted_on(params["campaign_id"])


def did_not_act_on_campaign(params: dict) -> ColumnElement:
    """SQL: the supporter has no action on the campaign."""
    return ~_acted_on(params["campaign_id"])


def months_before(moment: datetime, months: int) -> datetime:
    """Return the same day and time `months` calendar months earlier (clamped to month end)."""
    month_index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(month_index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def not_engaged(params: dict) -> ColumnElement:
    """SQL: mailed in the last N months, but no person opened, clicked or acted in that time.

    The sunset list: someone who was not mailed at all is not disengaged, only not asked.
    """
    cutoff = months_before(utcnow(), params["months"])
    acted = exists().where(Action.supporter_id == Supporter.id, Action.created_at >= cutoff)
    return received_mail_since(cutoff) & ~read_mail_since(cutoff) & ~acted


def check_campaign(params: dict) -> dict[str, list[str]]:
    """Return the problem with the condition's campaign id, by parameter, or nothing."""
    if db.session.get(Campaign, params["campaign_id"]) is None:
        return {"campaign_id": [f"No campaign with id {params['campaign_id']}."]}
    return {}


def _nothing_to_check(params: dict) -> dict[str, list[str]]:
    return {}


def register_campaign_behaviours() -> None:
    """Offer the action conditions to the segment engine (create_app calls this once)."""
    register_behaviour(
        "acted_on_campaign",
        acted_on_campaign,
        check_campaign,
        label="Acted on a campaign",
        params=("campaign_id",),
    )
    register_behaviour(
        "not_acted_on_campaign",
        did_not_act_on_campaign,
        check_campaign,
        label="Did not act on a campaign",
        params=("campaign_id",),
    )
    register_behaviour(
        "not_engaged",
        not_engaged,
        _nothing_to_check,
        label="Mailed but not engaged in the last N months (sunset)",
        params=("months",),
    )
