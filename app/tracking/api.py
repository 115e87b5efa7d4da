"""Tracking under /api/v1: what the recipients of a mailing did (GET /mailings/ID/stats).

Role: `analyst`. The counts themselves are app/tracking/stats.py.
"""

from __future__ import annotations

from marshmallow import fields

from app.api.auth import require_role
from app.api.blueprint import ApiBlueprint, get_or_404
from app.api.schemas import ClarionSchema as Schema
from app.auth.models import Role
from app.mailings.models import Mailing
from app.tracking import stats

stats_api = ApiBlueprint(
    "mailing_stats",
    __name__,
    url_prefix="/mailings",
    description="What the recipients of a mailing did: opens, clicks, actions, unsubscribes.",
)


class CountPairSchema(Schema):
    all = fields.Int(metadata={"description": "Distinct recipients, machines included."})
    human = fields.Int(metadata={"description": "Distinct recipients, machine events left out."})


class StatsSchema(Schema):
    opens = fields.Nested(CountPairSchema)
    clicks = fields.Nested(CountPairSchema)
    actions = fields.Nested(CountPairSchema)
    unsubscribes = fields.Nested(CountPairSchema)
    deliveries = fields.Dict(keys=fields.Str(), values=fields.Int())


@stats_api.get("/<int:mailing_id>/stats")
@require_role(Role.ANALYST)
@stats_api.response(200, StatsSchema)
def mailing_stats(mailing_id):
    """Count unique opens, clicks, actions and unsubscribes, all and human-only, and deliveries."""
    get_or_404(Mailing, mailing_id, "mailing")
    return stats.mailing_stats(mailing_id)


blueprints = (stats_api,)
