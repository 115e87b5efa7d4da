"""Every API blueprint, registered on the flask-smorest Api in one place."""

from __future__ import annotations

BEARER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API token from `clarion tokens create`.",
}


def register_blueprints(api) -> None:
    from app.api.docs import docs_assets
    from app.api.errors import ERROR_JSON_SCHEMA
    from app.campaigns.api import blueprints as campaign_blueprints
    from app.mailings.api import blueprints as mailing_blueprints
    from app.supporters.api import blueprints as supporter_blueprints
    from app.tracking.revocations_api import blueprints as revocation_blueprints

    api.spec.components.security_scheme("bearerAuth", BEARER_SCHEME)
    api.spec.options["security"] = [{"bearerAuth": []}]
    # flask-smorest documents its own error body; ours is {"error": {code, message, details}}.
    api.spec.components.schemas["Error"] = ERROR_JSON_SCHEMA
    # A plain Flask blueprint (static files), so it stays out of the OpenAPI document.
    api._app.register_blueprint(docs_assets)  # noqa: SLF001 - the app Api.init_app bound
    for blueprint in (
        *supporter_blueprints,
        *mailing_blueprints,
        *campaign_blueprints,
        *revocation_blueprints,
    ):
        api.register_blueprint(blueprint, url_prefix=f"/api/v1{blueprint.url_prefix or ''}")
