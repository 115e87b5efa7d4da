"""Supporters, lists, tags, segments and imports under /api/v1.

Roles: `analyst` reads everything here; `campaigner` also creates, changes and deletes
supporters, lists, tags and segments and starts imports; only `admin` erases a supporter
or exports everything stored about one (GDPR requests).
"""

from __future__ import annotations

from app.api.auth import current_actor, require_role
from app.api.blueprint import ApiBlueprint, commit, get_or_404
from app.api.errors import ApiError
from app.api.pagination import page_schema
from app.auth.models import Role
from app.supporters import schemas as s
from app.supporters import services
from app.supporters.imports_api import imports
from app.supporters.lists_api import lists
from app.supporters.models import Supporter
from app.supporters.segments_api import segments
from app.supporters.tags_api import tags

supporters = ApiBlueprint(
    "supporters",
    __name__,
    url_prefix="/supporters",
    description="People who signed up: create-or-update by email, search, GDPR erase and export.",
)


@supporters.route("", methods=["POST", "PUT"])
@require_role(Role.CAMPAIGNER)
@supporters.arguments(s.SupporterUpsertSchema)
@supporters.response(200, s.SupporterSchema, description="An existing supporter was updated.")
@supporters.alt_response(201, schema=s.SupporterSchema, description="A new supporter was created.")
def upsert_supporter(data):
    """Create or update a supporter, matched by email.

    The address is stripped and lower-cased. Fields left out are kept. A suppressed
    (unsubscribed, bounced, complained) supporter is never resubscribed by this call unless
    `status: subscribed` comes with `consent` describing their own opt-in; an address erased
    while suppressed stays suppressed when re-created. Every status change lands in the history.
    """
    supporter, created = services.upsert_supporter(data, actor=current_actor())
    commit("A supporter with this email was created at the same time; retry.")
    return supporter, 201 if created else 200


@supporters.get("")
@require_role(Role.ANALYST)
@supporters.arguments(s.SupporterQuerySchema, location="query")
@supporters.response(200, page_schema(s.SupporterSchema))
def search_supporters(args):
    """Search supporters by email, list, tag and status (paginated, oldest first)."""
    return services.search_supporters(args)


@supporters.get("/<int:supporter_id>")
@require_role(Role.ANALYST)
@supporters.response(200, s.SupporterSchema)
def get_supporter(supporter_id):
    """Get one supporter."""
    return get_or_404(Supporter, supporter_id, "supporter")


@supporters.patch("/<int:supporter_id>")
@require_role(Role.CAMPAIGNER)
@supporters.arguments(s.SupporterPatchSchema)
@supporters.response(200, s.SupporterSchema)
def patch_supporter(data, supporter_id):
    """Change some fields of a supporter (same status and consent rules as create-or-update)."""
    supporter = get_or_404(Supporter, supporter_id, "supporter")
    services.update_supporter(supporter, data, actor=current_actor())
    commit("Another supporter already has that address.")
    return supporter


@supporters.get("/<int:supporter_id>/history")
@require_role(Role.ANALYST)
@supporters.response(200, s.ChangeSchema(many=True))
def supporter_history(supporter_id):
    """List a supporter's subscription changes, oldest first (the consent record)."""
    return get_or_404(Supporter, supporter_id, "supporter").history


@supporters.post("/<int:supporter_id>/tags")
@require_role(Role.CAMPAIGNER)
@supporters.arguments(s.SupporterTagsInSchema)
@supporters.response(200, s.SupporterSchema)
def tag_supporter(data, supporter_id):
    """Add tags to a supporter by name, creating tags that do not exist yet."""
    supporter = get_or_404(Supporter, supporter_id, "supporter")
    services.add_tags(supporter, data["tags"])
    commit()
    return supporter


@supporters.delete("/<int:supporter_id>/tags/<string:name>")
@require_role(Role.CAMPAIGNER)
@supporters.response(204)
def untag_supporter(supporter_id, name):
    """Remove a tag from a supporter."""
    supporter = get_or_404(Supporter, supporter_id, "supporter")
    if not services.remove_tag(supporter, name):
        raise ApiError(404, "not_found", f"The supporter has no tag {name!r}.")
    commit()


blueprints = [supporters, lists, tags, segments, imports]
