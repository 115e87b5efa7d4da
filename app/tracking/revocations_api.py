"""Revoking links under /api/v1: every link of a mailing, or every link sent to a supporter.

Roles: `campaigner` or `admin`. See app/tracking/revocations.py for what a revocation does
(unsubscribe links are never revoked) and how soon every web process enforces it.
"""

from __future__ import annotations

from marshmallow import fields, validate

from app.api.auth import current_actor, require_role
from app.api.blueprint import ApiBlueprint, commit
from app.api.schemas import ClarionSchema as Schema
from app.auth.models import Role
from app.tracking import revocations

link_revocations = ApiBlueprint(
    "link_revocations",
    __name__,
    description="Withdraw the signed links already sent: every link of a mailing or of a "
    "supporter (unsubscribe links keep working).",
)


class RevokeInSchema(Schema):
    reason = fields.Str(
        validate=validate.Length(max=revocations.MAX_REASON_LENGTH),
        load_default=None,
        allow_none=True,
        metadata={"description": "Why, for the record (e.g. 'mail forwarded to a list')."},
    )


class RevocationSchema(Schema):
    id = fields.Int()
    mailing_id = fields.Int(allow_none=True)
    supporter_id = fields.Int(allow_none=True)
    revoked_at = fields.DateTime()
    revoked_by = fields.Str()
    reason = fields.Str(allow_none=True)


def _revoke(revoke, target_id: int, data: dict):
    revocation = revoke(target_id, actor=current_actor(), reason=data.get("reason"))
    commit()
    return revocation


@link_revocations.post("/mailings/<int:mailing_id>/revoke-links")
@require_role(Role.CAMPAIGNER)
@link_revocations.arguments(RevokeInSchema)
@link_revocations.response(201, RevocationSchema)
def revoke_mailing(data, mailing_id):
    """Revoke every link of a mailing sent so far (404 for an unknown mailing)."""
    return _revoke(revocations.revoke_mailing_links, mailing_id, data)


@link_revocations.post("/supporters/<int:supporter_id>/revoke-links")
@require_role(Role.CAMPAIGNER)
@link_revocations.arguments(RevokeInSchema)
@link_revocations.response(201, RevocationSchema)
def revoke_supporter(data, supporter_id):
    """Revoke every link sent to a supporter so far; mail sent later has working links."""
    return _revoke(revocations.revoke_supporter_links, supporter_id, data)


blueprints = (link_revocations,)
