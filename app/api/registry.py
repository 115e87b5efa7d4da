"""Every API blueprint, registered on the flask-smorest Api in one place."""

from __future__ import annotations

BEARER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API token from `clarion tokens create`.",
}


def register_blueprints(api) -> None:
    from app.mailings.api import blueprints as mailing_blueprints
    from app.supporters.api import blueprints as supporter_blueprints

    api.spec.components.security_scheme("bearerAuth", BEARER_SCHEME)
    api.spec.options["security"] = [{"bearerAuth": []}]
    for blueprint in (*supporter_blueprints, *mailing_blueprints):
        api.register_blueprint(blueprint, url_prefix=f"/api/v1{blueprint.url_prefix or ''}")
