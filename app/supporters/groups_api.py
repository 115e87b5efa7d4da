"""Lists, tags, saved segments and CSV imports under /api/v1 (roles as in supporters.api)."""

from __future__ import annotations

from flask import Response, current_app, request, stream_with_context, url_for
from marshmallow import EXCLUDE, ValidationError
from sqlalchemy import select

from app.api.auth import current_actor, require_role
from app.api.blueprint import ApiBlueprint, commit, get_or_404
from app.api.errors import ApiError
from app.api.pagination import PageArgsSchema, page_schema, paginate
from app.auth.models import Role
from app.extensions import db
from app.supporters import schemas as s
from app.supporters import services
from app.supporters.csvencoding import EncodingError, codec_name, detect_encoding, is_line_safe
from app.supporters.importer import create_import, rejections_csv
from app.supporters.models import MailingList, Segment, SupporterImport, Tag
from app.supporters.segments import (
    count_segment,
    segment_users,
    validate_definition,
)

lists = ApiBlueprint("lists", __name__, url_prefix="/lists", description="Mailing lists.")
tags = ApiBlueprint("tags", __name__, url_prefix="/tags", description="Tags on supporters.")
segments = ApiBlueprint(
    "segments",
    __name__,
    url_prefix="/segments",
    description="Saved audiences: lists and tags to include or exclude plus field conditions.",
)
imports = ApiBlueprint(
    "imports", __name__, url_prefix="/imports", description="CSV imports, run in the background."
)

CSV_EXTENSIONS = (".csv", ".txt")
SNIFF_BYTES = 64 * 1024


def _refuse_duplicate_name(model, name: str, label: str, own_id: int | None = None) -> None:
    existing = db.session.scalar(select(model.id).where(model.name == name))
    if existing is not None and existing != own_id:
        raise ApiError(
            409, "duplicate_name", f"A {label} named {name!r} already exists.", {"id": existing}
        )


# --- lists -----------------------------------------------------------------------------------


def _with_counts(mailing_list: MailingList, counts: dict) -> MailingList:
    mailing_list.member_count, mailing_list.subscribed_count = counts.get(mailing_list.id, (0, 0))
    return mailing_list


@lists.post("")
@require_role(Role.CAMPAIGNER)
@lists.arguments(s.ListInSchema)
@lists.response(201, s.ListSchema)
def create_list(data):
    """Create a list (names are unique)."""
    name = data["name"].strip()
    _refuse_duplicate_name(MailingList, name, "list")
    mailing_list = MailingList(name=name, description=data.get("description"))
    db.session.add(mailing_list)
    commit("A list with this name was created at the same time.")
    return _with_counts(mailing_list, {})


@lists.get("")
@require_role(Role.ANALYST)
@lists.arguments(PageArgsSchema, location="query")
@lists.response(200, page_schema(s.ListSchema))
def list_lists(args):
    """List the lists with member counts (paginated, by name)."""
    page = paginate(select(MailingList).order_by(MailingList.name), args)
    counts = services.member_counts()
    page["items"] = [_with_counts(m, counts) for m in page["items"]]
    return page


@lists.get("/<int:list_id>")
@require_role(Role.ANALYST)
@lists.response(200, s.ListSchema)
def get_list(list_id):
    """Get one list with its member counts."""
    return _with_counts(get_or_404(MailingList, list_id, "list"), services.member_counts())


@lists.patch("/<int:list_id>")
@require_role(Role.CAMPAIGNER)
@lists.arguments(s.ListPatchSchema)
@lists.response(200, s.ListSchema)
def patch_list(data, list_id):
    """Rename a list or change its description."""
    mailing_list = get_or_404(MailingList, list_id, "list")
    if "name" in data:
        name = data["name"].strip()
        _refuse_duplicate_name(MailingList, name, "list", own_id=list_id)
        mailing_list.name = name
    if "description" in data:
        mailing_list.description = data["description"]
    commit("A list with this name was created at the same time.")
    return _with_counts(mailing_list, services.member_counts())


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


# --- tags ------------------------------------------------------------------------------------


@tags.get("")
@require_role(Role.ANALYST)
@tags.arguments(PageArgsSchema, location="query")
@tags.response(200, page_schema(s.TagSchema))
def list_tags(args):
    """List tags with how many supporters have each (paginated, by name)."""
    page = paginate(select(Tag).order_by(Tag.name), args)
    counts = services.tag_counts()
    for tag in page["items"]:
        tag.supporter_count = counts.get(tag.id, 0)
    return page


@tags.post("")
@require_role(Role.CAMPAIGNER)
@tags.arguments(s.TagInSchema)
@tags.response(201, s.TagSchema)
def create_tag(data):
    """Create a tag (names are unique)."""
    name = data["name"].strip()
    _refuse_duplicate_name(Tag, name, "tag")
    tag = Tag(name=name)
    db.session.add(tag)
    commit("A tag with this name was created at the same time.")
    tag.supporter_count = 0
    return tag


@tags.delete("/<int:tag_id>")
@require_role(Role.CAMPAIGNER)
@tags.response(204)
def delete_tag(tag_id):
    """Delete a tag and remove it from every supporter."""
    db.session.delete(get_or_404(Tag, tag_id, "tag"))
    commit()


# --- segments --------------------------------------------------------------------------------


def _validated(definition: dict) -> dict:
    return validate_definition(definition)


@segments.post("")
@require_role(Role.CAMPAIGNER)
@segments.arguments(s.SegmentInSchema)
@segments.response(201, s.SegmentSchema)
def create_segment(data):
    """Save a segment; list and tag ids must exist."""
    name = data["name"].strip()
    _refuse_duplicate_name(Segment, name, "segment")
    segment = Segment(name=name, definition=_validated(data["definition"]))
    db.session.add(segment)
    commit("A segment with this name was created at the same time.")
    return segment


@segments.get("")
@require_role(Role.ANALYST)
@segments.arguments(PageArgsSchema, location="query")
@segments.response(200, page_schema(s.SegmentSchema))
def list_segments(args):
    """List saved segments (paginated, by name)."""
    return paginate(select(Segment).order_by(Segment.name), args)


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
    segment = get_or_404(Segment, segment_id, "segment")
    if "name" in data:
        name = data["name"].strip()
        _refuse_duplicate_name(Segment, name, "segment", own_id=segment_id)
        segment.name = name
    if "definition" in data:
        segment.definition = _validated(data["definition"])
    commit("A segment with this name was created at the same time.")
    return segment


@segments.delete("/<int:segment_id>")
@require_role(Role.CAMPAIGNER)
@segments.response(204)
def delete_segment(segment_id):
    """Delete a segment, unless a mailing that has not finished still uses it (409)."""
    segment = get_or_404(Segment, segment_id, "segment")
    users = segment_users(segment_id)
    if users:
        raise ApiError(
            409, "segment_in_use", "Mailings still use this segment.", {"mailing_ids": users}
        )
    db.session.delete(segment)
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
    return {"count": count_segment(_validated(data["definition"]))}


# --- imports ---------------------------------------------------------------------------------


@imports.post("")
@require_role(Role.CAMPAIGNER)
@imports.arguments(s.ImportUploadSchema, location="files", content_type="multipart/form-data")
@imports.response(202, s.ImportStartedSchema)
def start_import(files):
    """Upload a CSV of supporters to import in the background; poll `status_url` for progress."""
    # webargs reads one location per schema: the file above, the plain form fields here.
    try:
        form = s.ImportFormSchema().load(request.form.to_dict(), unknown=EXCLUDE)
    except ValidationError as exc:
        raise ApiError(422, "validation_error", "Invalid form fields.", exc.messages) from exc
    upload = files["file"]
    _check_csv(upload, form.get("encoding"))
    tag_names = [t.strip() for t in (form.get("tags") or "").split(",") if t.strip()]
    job = create_import(
        upload.stream,
        upload.filename,
        list_name=(form.get("list") or "").strip() or None,
        tag_names=tag_names,
        source=form.get("source"),
        created_by=current_actor(),
        settings=current_app.config["CLARION"],
        encoding=form.get("encoding"),
    )
    commit()
    return {
        "id": job.id,
        "status": job.status.value,
        "status_url": url_for("imports.get_import", import_id=job.id),
    }


def _check_csv(upload, encoding: str | None) -> None:
    """Refuse what is plainly not a CSV in a text encoding we can read before storing it."""
    name = (upload.filename or "").lower()
    if not name.endswith(CSV_EXTENSIONS):
        raise ApiError(422, "invalid_import", "Upload a .csv file.", {"file": ["Not a .csv file."]})
    head = upload.stream.read(SNIFF_BYTES)
    upload.stream.seek(0)
    if not head.strip():
        raise ApiError(422, "invalid_import", "The file is empty.", {"file": ["Empty file."]})
    whole_file = len(head) < SNIFF_BYTES
    try:
        codec = encoding or detect_encoding(head, whole_file=whole_file)
    except EncodingError as exc:
        raise ApiError(
            422, "invalid_import", str(exc), {"file": ["Unknown text encoding."]}
        ) from exc
    # NUL is text only in UTF-16/32; elsewhere it means a binary file (a spreadsheet, an image).
    if is_line_safe(codec_name(codec)) and b"\x00" in head:
        raise ApiError(422, "invalid_import", "The file is not text.", {"file": ["Binary file."]})


@imports.get("/<int:import_id>")
@require_role(Role.ANALYST)
@imports.response(200, s.ImportSchema)
def get_import(import_id):
    """Get an import's status, counts and progress."""
    return get_or_404(SupporterImport, import_id, "import")


@imports.get("/<int:import_id>/errors.csv")
@require_role(Role.ANALYST)
@imports.response(200, description="CSV of rejected rows: row number, reason, raw row.")
def import_errors(import_id):
    """Download the rows an import rejected, as CSV."""
    get_or_404(SupporterImport, import_id, "import")
    return Response(
        stream_with_context(rejections_csv(import_id)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="import-{import_id}-errors.csv"'},
    )
