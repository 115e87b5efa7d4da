"""Every API blueprint, registered on the flask-smorest Api in one place.

An edge: it imports every domain's api module, so it lives beside create_app, not in the API kit
(app/api/), which every domain's api module imports.
"""

from __future__ import annotations

from app.api.docs import docs_assets
from app.api.errors import ERROR_JSON_SCHEMA
from app.campaigns.api import blueprints as campaign_blueprints
from app.campaigns.behaviour import register_campaign_behaviours
from app.campaigns.reports_api import blueprints as campaign_report_blueprints
from app.campaigns.services import campaign_gate
from app.mailings.api import blueprints as mailing_blueprints
from app.mailings.compose.services import unfinished_mailings_using_segment
from app.mailings.delivery.campaign_gate import answer_campaign_gate
from app.privacy.api import blueprints as privacy_blueprints
from app.supporters.api import blueprints as supporter_blueprints
from app.supporters.segments import answer_segment_users
from app.tracking.api import blueprints as tracking_blueprints
from app.tracking.behaviour import register_tracking_behaviours
from app.tracking.reports_api import blueprints as report_blueprints
from app.tracking.revocations_api import blueprints as revocation_blueprints

BEARER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API token from `clarion tokens create`.",
}


def register_blueprints(api) -> None:
    # A lower domain's API asks a higher one through a function the edge hands it.
    answer_segment_users(unfinished_mailings_using_segment)
    answer_campaign_gate(campaign_gate)
    # Behaviour segment conditions live with the data they read (actions, opens and clicks).
    register_campaign_behaviours()
    register_tracking_behaviours()
    api.spec.components.security_scheme("bearerAuth", BEARER_SCHEME)
    api.spec.options["security"] = [{"bearerAuth": []}]
    # flask-smorest documents its own error body; ours is {"error": {code, message, details}}.
    api.spec.components.schemas["Error"] = ERROR_JSON_SCHEMA
    # A plain Flask blueprint (static files), so it stays out of the OpenAPI document.
    api._app.register_blueprint(docs_assets)  # noqa: SLF001 - the app Api.init_app bound
    for blueprint in (
        *supporter_blueprints,
        *privacy_blueprints,
        *mailing_blueprints,
        *tracking_blueprints,
        *report_blueprints,
        *campaign_blueprints,
        *campaign_report_blueprints,
        *revocation_blueprints,
    ):
        api.register_blueprint(blueprint, url_prefix=f"/api/v1{blueprint.url_prefix or ''}")
