"""Request and response schemas for the mailings API, and the fields a mailing is composed of."""

from __future__ import annotations

from marshmallow import fields, validate

from app.api.pagination import PageArgsSchema
from app.api.schemas import ClarionSchema as Schema
from app.mailings.models import VARIANT_LABELS, MailingStatus

STATUSES = [s.value for s in MailingStatus]
MAX_TEST_ADDRESSES = 20


def _ids(description: str):
    return fields.List(
        fields.Int(strict=True, validate=validate.Range(min=1)),
        load_default=list,
        validate=validate.Length(max=1000),
        metadata={"description": description},
    )


class AudienceSchema(Schema):
    include_lists = _ids("Members of ANY of these list ids.")
    exclude_lists = _ids("Minus members of any of these list ids.")
    include_tags = _ids("Supporters with ANY of these tag ids.")
    exclude_tags = _ids("Minus supporters with any of these tag ids.")
    segments = _ids("Plus the supporters these saved segment ids match.")
    exclude_segments = _ids(
        "Minus the supporters these saved segment ids match (e.g. who opened it already)."
    )


def _text(max_length: int, **kwargs):
    return fields.Str(validate=validate.Length(max=max_length), **kwargs)


class MailingDataSchema(Schema):
    """The fields staff write; every one optional here (a PATCH changes only what it sends)."""

    name = fields.Str(validate=validate.Length(min=1, max=200))
    subject = fields.Str(
        validate=validate.Length(min=1, max=998),
        metadata={"description": 'Merge fields allowed: `{{ first_name | default("Friend") }}`.'},
    )
    preheader = _text(300, allow_none=True)
    from_name = _text(200, allow_none=True)
    from_email = _text(320, allow_none=True, metadata={"description": "Default: MAIL_FROM."})
    reply_to = _text(320, allow_none=True)
    layout = _text(
        100,
        allow_none=True,
        metadata={"description": "A layout in templates/emails; or give body_mjml."},
    )
    body_mjml = _text(1_000_000, allow_none=True)
    body_text = _text(1_000_000, allow_none=True, metadata={"description": "Default: from HTML."})
    audience = fields.Nested(AudienceSchema)
    send_rate = fields.Float(
        allow_none=True,
        allow_nan=False,
        validate=validate.Range(min=0, min_inclusive=False, max=100_000),
        metadata={"description": "Messages per second; null sends as fast as allowed."},
    )
    campaign_id = fields.Int(
        strict=True,
        allow_none=True,
        validate=validate.Range(min=1, max=2**63 - 1),
        metadata={
            "description": "The campaign `{{ action_url }}` opens; null unlinks. The mailing "
            "can be sent only while that campaign is open."
        },
    )


class MailingInSchema(MailingDataSchema):
    name = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    subject = fields.Str(
        required=True,
        validate=validate.Length(min=1, max=998),
        metadata={"description": 'Merge fields allowed: `{{ first_name | default("Friend") }}`.'},
    )


class MailingPatchSchema(MailingDataSchema):
    pass


class LinkSchema(Schema):
    position = fields.Int()
    url = fields.Str()
    is_honeypot = fields.Bool()


class MailingSchema(Schema):
    id = fields.Int()
    name = fields.Str()
    subject = fields.Str()
    preheader = fields.Str(allow_none=True)
    from_name = fields.Str(allow_none=True)
    from_email = fields.Str(allow_none=True)
    reply_to = fields.Str(allow_none=True)
    layout = fields.Str(allow_none=True)
    body_mjml = fields.Str(allow_none=True)
    body_text = fields.Str(allow_none=True)
    campaign_id = fields.Int(allow_none=True)
    audience = fields.Dict()
    send_rate = fields.Float(allow_none=True)
    status = fields.Function(lambda m: m.status.value)
    status_reason = fields.Str(allow_none=True)
    scheduled_at = fields.DateTime(allow_none=True)
    frozen_at = fields.DateTime(allow_none=True)
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    total_recipients = fields.Int()
    links = fields.List(
        fields.Nested(LinkSchema),
        metadata={"description": "The tracked links, once the mailing is frozen (0 = honeypot)."},
    )
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class MailingQuerySchema(PageArgsSchema):
    status = fields.Str(validate=validate.OneOf(STATUSES))


class PreviewQuerySchema(Schema):
    variant = fields.Str(
        validate=validate.OneOf(list(VARIANT_LABELS)),
        metadata={"description": "An A/B test's variant (A-E); default the mailing itself."},
    )
    supporter_id = fields.Int(
        validate=validate.Range(min=1),
        metadata={"description": "Render as this supporter; default a sample person."},
    )
    format = fields.Str(
        load_default="json",
        validate=validate.OneOf(("json", "html", "text")),
        metadata={"description": "`html` and `text` answer with just that part."},
    )


class PreviewSchema(Schema):
    subject = fields.Str()
    html = fields.Str()
    text = fields.Str()


class TestSendInSchema(Schema):
    to = fields.List(
        fields.Str(validate=validate.Length(max=320)),
        required=True,
        metadata={"description": f"1-{MAX_TEST_ADDRESSES} addresses."},
    )
    supporter_id = fields.Int(
        allow_none=True,
        validate=validate.Range(min=1),
        metadata={"description": "Fill merge fields from this supporter; default a sample."},
    )
    variant = fields.Str(
        validate=validate.OneOf(list(VARIANT_LABELS)),
        metadata={"description": "An A/B test's variant (A-E); default the mailing itself."},
    )


class TestSendResultSchema(Schema):
    address = fields.Str()
    ok = fields.Bool()
    message_id = fields.Str(allow_none=True)
    error = fields.Str(allow_none=True)


class TestSendOutSchema(Schema):
    sent = fields.Int()
    failed = fields.Int()
    results = fields.List(fields.Nested(TestSendResultSchema))


class SendInSchema(Schema):
    at = fields.AwareDateTime(
        allow_none=True,
        metadata={"description": "ISO 8601 with a timezone; default (or a past time): now."},
    )


class StatusSchema(Schema):
    id = fields.Int()
    status = fields.Str()
    reason = fields.Str(allow_none=True)
    total = fields.Int()
    counts = fields.Dict(keys=fields.Str(), values=fields.Int())
    done = fields.Int()
    rate_per_second = fields.Float(allow_none=True)
    eta_seconds = fields.Float(allow_none=True)
    scheduled_at = fields.DateTime(allow_none=True)
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
