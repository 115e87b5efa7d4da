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
from app.tracking import reports, stats
from app.tracking.reports_api import ReportRatesSchema

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
    rates = fields.Nested(
        ReportRatesSchema,
        metadata={
            "description": "Open, click, click-to-open, action, unsubscribe, bounce and "
            "complaint rates, as the report gives them."
        },
    )


@stats_api.get("/<int:mailing_id>/stats")
@require_role(Role.ANALYST)
@stats_api.response(200, StatsSchema)
def mailing_stats(mailing_id):
    """Count unique opens, clicks, actions and unsubscribes, all and human-only, deliveries,
    and the rates over delivered (click-to-open over openers)."""
    get_or_404(Mailing, mailing_id, "mailing")
    figures = stats.mailing_stats(mailing_id)
    return figures | {"rates": reports.rates_of(figures, reports.bounce_counts(mailing_id))}


blueprints = (stats_api,)
