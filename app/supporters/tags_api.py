"""Tags on supporters under /api/v1/tags (roles as in supporters.api)."""

from __future__ import annotations

from app.api.auth import require_role
from app.api.blueprint import ApiBlueprint, commit, get_or_404
from app.api.pagination import PageArgsSchema, page_schema
from app.auth.models import Role
from app.extensions import db
from app.supporters import groups
from app.supporters import schemas as s
from app.supporters.models import Tag

tags = ApiBlueprint("tags", __name__, url_prefix="/tags", description="Tags on supporters.")


@tags.get("")
@require_role(Role.ANALYST)
@tags.arguments(PageArgsSchema, location="query")
@tags.response(200, page_schema(s.TagSchema))
def list_tags(args):
    """List tags with how many supporters have each (paginated, by name)."""
    return groups.list_tags(args)


@tags.post("")
@require_role(Role.CAMPAIGNER)
@tags.arguments(s.TagInSchema)
@tags.response(201, s.TagSchema)
def create_tag(data):
    """Create a tag (names are unique)."""
    tag = groups.create_tag(data)
    commit("A tag with this name was created at the same time.")
    return tag


@tags.delete("/<int:tag_id>")
@require_role(Role.CAMPAIGNER)
@tags.response(204)
def delete_tag(tag_id):
    """Delete a tag and remove it from every supporter."""
    db.session.delete(get_or_404(Tag, tag_id, "tag"))
    commit()
