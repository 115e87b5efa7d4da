"""Request and response schemas for the supporters, lists, tags, segments and imports API."""

from __future__ import annotations

from flask import url_for
from flask_smorest.fields import Upload
from marshmallow import ValidationError, fields, post_load, validate

from app.api.pagination import PageArgsSchema
from app.api.schemas import ClarionSchema as Schema
from app.supporters.csvencoding import EncodingError, codec_name, describe
from app.supporters.models import SubscriptionStatus
from app.supporters.segments import SegmentDefinitionSchema

STATUSES = [s.value for s in SubscriptionStatus]
NAME = validate.Length(min=1, max=200)


def _check_custom_fields(value: dict) -> None:
    for key, item in value.items():
        if not 1 <= len(key) <= 100:
            raise ValidationError(f"Custom field names are 1-100 characters: {key!r}.")
        if item is not None and not isinstance(item, str | int | float | bool):
            raise ValidationError(f"Custom field {key!r} must be a string, number or boolean.")
        if isinstance(item, str) and len(item) > 10_000:
            raise ValidationError(f"Custom field {key!r} is longer than 10,000 characters.")


class ConsentSchema(Schema):
    channel = fields.Str(
        required=True,
        validate=validate.Length(min=1, max=40),
        metadata={"description": "How the supporter opted in, e.g. `web_form`, `double_opt_in`."},
    )
    detail = fields.Str(
        load_default=None,
        validate=validate.Length(max=2000),
        metadata={"description": "Evidence: form URL, confirmation id, timestamp …"},
    )


class SupporterFieldsSchema(Schema):
    first_name = fields.Str(allow_none=True, validate=validate.Length(max=200))
    last_name = fields.Str(allow_none=True, validate=validate.Length(max=200))
    postcode = fields.Str(allow_none=True, validate=validate.Length(max=40))
    country = fields.Str(
        allow_none=True,
        validate=validate.Regexp(r"^([A-Za-z]{2})?$", error="Use a two-letter country code."),
    )
    language = fields.Str(allow_none=True, validate=validate.Length(max=16))
    source = fields.Str(allow_none=True, validate=validate.Length(max=200))
    custom_fields = fields.Dict(
        keys=fields.Str(),
        values=fields.Raw(allow_none=True),
        validate=_check_custom_fields,
        metadata={"description": "Merged into the stored ones; a null value removes that field."},
    )
    status = fields.Str(
        validate=validate.OneOf(STATUSES),
        metadata={
            "description": "Change the subscription status explicitly. Back to `subscribed` from "
            "a suppressed status needs `consent` (409 otherwise)."
        },
    )
    consent = fields.Nested(ConsentSchema)
    lists = fields.List(
        fields.Str(validate=NAME),
        validate=validate.Length(max=100),
        metadata={"description": "Names of existing lists to add the supporter to."},
    )
    tags = fields.List(
        fields.Str(validate=validate.Length(min=1, max=100)),
        validate=validate.Length(max=100),
        metadata={"description": "Tag names to add; unknown tags are created."},
    )

    @post_load
    def upper_country(self, data, **kwargs):
        if data.get("country"):
            data["country"] = data["country"].upper()
        return data


class SupporterUpsertSchema(SupporterFieldsSchema):
    email = fields.Str(required=True, validate=validate.Length(min=3, max=320))


class SupporterPatchSchema(SupporterFieldsSchema):
    email = fields.Str(validate=validate.Length(min=3, max=320))


class SupporterSchema(Schema):
    id = fields.Int()
    email = fields.Str()
    first_name = fields.Str(allow_none=True)
    last_name = fields.Str(allow_none=True)
    postcode = fields.Str(allow_none=True)
    country = fields.Str(allow_none=True)
    language = fields.Str(allow_none=True)
    source = fields.Str(allow_none=True)
    custom_fields = fields.Dict()
    status = fields.Function(lambda s: s.status.value)
    soft_bounce_count = fields.Int()
    lists = fields.Function(lambda s: sorted(m.name for m in s.lists))
    tags = fields.Function(lambda s: sorted(t.name for t in s.tags))
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class SupporterQuerySchema(PageArgsSchema):
    email = fields.Str(metadata={"description": "Exact address (normalised before matching)."})
    list = fields.Str(metadata={"description": "List id or name."})
    tag = fields.Str(metadata={"description": "Tag id or name."})
    status = fields.Str(validate=validate.OneOf(STATUSES))


class ChangeSchema(Schema):
    old_status = fields.Function(lambda c: c.old_status.value if c.old_status else None)
    new_status = fields.Function(lambda c: c.new_status.value)
    channel = fields.Str()
    actor = fields.Str(allow_none=True)
    detail = fields.Str(allow_none=True)
    changed_at = fields.DateTime()


class ListInSchema(Schema):
    name = fields.Str(required=True, validate=NAME)
    description = fields.Str(allow_none=True, validate=validate.Length(max=5000))


class ListPatchSchema(Schema):
    name = fields.Str(validate=NAME)
    description = fields.Str(allow_none=True, validate=validate.Length(max=5000))


class ListSchema(Schema):
    id = fields.Int()
    name = fields.Str()
    description = fields.Str(allow_none=True)
    created_at = fields.DateTime()
    member_count = fields.Int()
    subscribed_count = fields.Int()


class MembersInSchema(Schema):
    supporter_ids = fields.List(
        fields.Int(strict=True), load_default=list, validate=validate.Length(max=10_000)
    )
    emails = fields.List(
        fields.Str(validate=validate.Length(max=320)),
        load_default=list,
        validate=validate.Length(max=10_000),
    )

    @post_load
    def require_someone(self, data, **kwargs):
        if not data["supporter_ids"] and not data["emails"]:
            raise ValidationError("Give supporter_ids or emails.", "supporter_ids")
        return data


class NotFoundMembersSchema(Schema):
    supporter_ids = fields.List(fields.Int())
    emails = fields.List(fields.Str())


class MembersResultSchema(Schema):
    added = fields.Int()
    already_members = fields.Int()
    not_found = fields.Nested(NotFoundMembersSchema)


class TagInSchema(Schema):
    name = fields.Str(required=True, validate=validate.Length(min=1, max=100))


class TagSchema(Schema):
    id = fields.Int()
    name = fields.Str()
    created_at = fields.DateTime()
    supporter_count = fields.Int()


class SupporterTagsInSchema(Schema):
    tags = fields.List(
        fields.Str(validate=validate.Length(min=1, max=100)),
        required=True,
        validate=validate.Length(min=1, max=100),
    )


class SegmentInSchema(Schema):
    name = fields.Str(required=True, validate=NAME)
    definition = fields.Nested(SegmentDefinitionSchema, required=True)


class SegmentPatchSchema(Schema):
    name = fields.Str(validate=NAME)
    definition = fields.Nested(SegmentDefinitionSchema)


class SegmentSchema(Schema):
    id = fields.Int()
    name = fields.Str()
    definition = fields.Dict()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class SegmentCountInSchema(Schema):
    definition = fields.Nested(SegmentDefinitionSchema, required=True)


class CountSchema(Schema):
    count = fields.Int()


def _known_encoding(name: str) -> None:
    try:
        codec_name(name)
    except EncodingError as exc:
        raise ValidationError(str(exc)) from None


class ImportFormSchema(Schema):
    list = fields.Str(validate=NAME, metadata={"description": "List to add every row to."})
    tags = fields.Str(
        validate=validate.Length(max=2000), metadata={"description": "Comma-separated tag names."}
    )
    source = fields.Str(validate=validate.Length(max=200))
    encoding = fields.Str(
        validate=_known_encoding,
        metadata={
            "description": "The file's text encoding (e.g. `utf-8`, `cp1252`, `utf-16`); "
            "detected when omitted."
        },
    )


class ImportUploadSchema(ImportFormSchema):
    file = Upload(
        required=True,
        metadata={
            "description": "A CSV with an `email` column: UTF-8 (with or without BOM), "
            "UTF-16 with BOM, or Windows-1252 (Excel's plain CSV)."
        },
    )


class ImportStartedSchema(Schema):
    id = fields.Int()
    status = fields.Str()
    status_url = fields.Str()


class ImportSchema(Schema):
    id = fields.Int()
    filename = fields.Str()
    status = fields.Function(lambda i: i.status.value)
    list_name = fields.Str(allow_none=True)
    tag_names = fields.List(fields.Str())
    source = fields.Str(allow_none=True)
    encoding = fields.Str(
        allow_none=True,
        metadata={"description": "Codec the file was read in (null until the file is read)."},
    )
    encoding_name = fields.Function(
        lambda i: describe(i.encoding) if i.encoding else None,
        metadata={"description": "The encoding as spreadsheet users know it."},
    )
    total_rows = fields.Int(allow_none=True)
    processed_rows = fields.Int()
    progress = fields.Function(
        lambda i: _progress(i), metadata={"description": "Percent of rows processed, 0-100."}
    )
    counts = fields.Function(
        lambda i: {
            "created": i.created_count,
            "updated": i.updated_count,
            "unchanged": i.unchanged_count,
            "rejected": i.rejected_count,
        }
    )
    error = fields.Str(allow_none=True)
    created_by = fields.Str(allow_none=True)
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    errors_url = fields.Function(
        lambda i: url_for("imports.import_errors", import_id=i.id),
        metadata={"description": "CSV of the rows this import rejected."},
    )


def _progress(job) -> float:
    if job.status.value == "done":
        return 100.0
    if not job.total_rows:
        return 0.0
    return round(min(100.0, 100.0 * job.processed_rows / job.total_rows), 1)
