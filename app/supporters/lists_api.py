"""Mailing lists and their members under /api/v1/lists (roles as in supporters.api)."""

from __future__ import annotations

from app.api.auth import require_role
from app.api.blueprint import ApiBlueprint, commit, get_or_404
from app.api.errors import ApiError
from app.api.pagination import PageArgsSchema, page_schema
from app.auth.models import Role
from app.extensions import db
from app.supporters import groups, services
from app.supporters import schemas as s
from app.supporters.models import MailingList

lists = ApiBlueprint("lists", __name__, url_prefix="/lists", description="Mailing lists.")


@lists.post("")
@require_role(Role.CAMPAIGNER)
@lists.arguments(s.ListInSchema)
@lists.response(201, s.ListSchema)
def create_list(data):
    """Create a list (names are unique)."""
    mailing_list = groups.create_list(data)
    commit("A list with this name was created at the same time.")
    return mailing_list


@lists.get("")
@require_role(Role.ANALYST)
@lists.arguments(PageArgsSchema, location="query")
@lists.response(200, page_schema(s.ListSchema))
def list_lists(args):
    """List the lists with member counts (paginated, by name)."""
    return groups.list_lists(args)


@lists.get("/<int:list_id>")
@require_role(Role.ANALYST)
@lists.response(200, s.ListSchema)
def get_list(list_id):
    """Get one list with its member counts."""
    return groups.with_member_counts(get_or_404(MailingList, list_id, "list"))


@lists.patch("/<int:list_id>")
@require_role(Role.CAMPAIGNER)
@lists.arguments(s.ListPatchSchema)
@lists.response(200, s.ListSchema)
def patch_list(data, list_id):
    """Rename a list or change its description."""
    mailing_list = groups.update_list(get_or_404(MailingList, list_id, "list"), data)
    commit("A list with this name was created at the same time.")
    return groups.with_member_counts(mailing_list)


@lists.delete("/<int:list_id>")
@require_role(Role.CAMPAIGNER)
@lists.response(204)
def delete_list(list_id):
    """Delete a list and its memberships (the supporters stay)."""
    db.session.delete(get_or_404(MailingList, list_id, "list"))
    commit()


@lists.post("/<int:list_id>/members")
@require_role(Role.CAMPAIGNER)
@lists.arguments(s.MembersInSchema)
@lists.response(200, s.MembersResultSchema)
def add_members(data, list_id):
    """Add supporters to a list by id or email; unknown ones are reported, not created."""
    mailing_list = get_or_404(MailingList, list_id, "list")
    result = services.add_list_members(mailing_list, data["supporter_ids"], data["emails"])
    commit()
    return result


@lists.delete("/<int:list_id>/members/<int:supporter_id>")
@require_role(Role.CAMPAIGNER)
@lists.response(204)
def remove_member(list_id, supporter_id):
    """Remove a supporter from a list."""
    mailing_list = get_or_404(MailingList, list_id, "list")
    if not services.remove_list_member(mailing_list, supporter_id):
        raise ApiError(404, "not_found", f"Supporter {supporter_id} is not on this list.")
    commit()
