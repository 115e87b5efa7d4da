"""Saved segments under /api/v1/segments (roles as in supporters.api)."""

from __future__ import annotations

from app.api.auth import require_role
from app.api.blueprint import ApiBlueprint, commit, get_or_404
from app.api.pagination import PageArgsSchema, page_schema
from app.auth.models import Role
from app.supporters import groups
from app.supporters import schemas as s
from app.supporters.models import Segment
from app.supporters.segments import count_segment, validate_definition

segments = ApiBlueprint(
    "segments",
    __name__,
    url_prefix="/segments",
    description="Saved audiences: lists and tags to include or exclude plus field conditions.",
)


@segments.post("")
@require_role(Role.CAMPAIGNER)
@segments.arguments(s.SegmentInSchema)
@segments.response(201, s.SegmentSchema)
def create_segment(data):
    """Save a segment; list and tag ids must exist."""
    segment = groups.create_segment(data)
    commit("A segment with this name was created at the same time.")
    return segment


@segments.get("")
@require_role(Role.ANALYST)
@segments.arguments(PageArgsSchema, location="query")
@segments.response(200, page_schema(s.SegmentSchema))
def list_segments(args):
    """List saved segments (paginated, by name)."""
    return groups.list_segments(args)


@segments.get("/<int:segment_id>")
@require_role(Role.ANALYST)
@segments.response(200, s.SegmentSchema)
def get_segment(segment_id):
    """Get one saved segment."""
    return get_or_404(Segment, segment_id, "segment")


@segments.patch("/<int:segment_id>")
@require_role(Role.CAMPAIGNER)
@segments.arguments(s.SegmentPatchSchema)
@segments.response(200, s.SegmentSchema)
def patch_segment(data, segment_id):
    """Rename a segment or replace its definition."""
    segment = groups.update_segment(get_or_404(Segment, segment_id, "segment"), data)
    commit("A segment with this name was created at the same time.")
    return segment


@segments.delete("/<int:segment_id>")
@require_role(Role.CAMPAIGNER)
@segments.response(204)
def delete_segment(segment_id):
    """Delete a segment, unless a mailing that has not finished still uses it (409)."""
    groups.delete_segment(get_or_404(Segment, segment_id, "segment"))
    commit()


@segments.get("/<int:segment_id>/count")
@require_role(Role.ANALYST)
@segments.response(200, s.CountSchema)
def count_saved_segment(segment_id):
    """Count the supporters a saved segment matches right now."""
    segment = get_or_404(Segment, segment_id, "segment")
    return {"count": count_segment(segment.definition)}


@segments.post("/count")
@require_role(Role.ANALYST)
@segments.arguments(s.SegmentCountInSchema)
@segments.response(200, s.CountSchema)
def count_unsaved_segment(data):
    """Count the supporters an unsaved definition would match (for building a segment)."""
    return {"count": count_segment(validate_definition(data["definition"]))}
