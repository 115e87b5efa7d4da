"""Request and response schemas for the campaigns API."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from app.api.pagination import PageArgsSchema
from app.api.schemas import ClarionSchema as Schema
from app.campaigns.models import CampaignKind, CampaignStatus, LetterStatus

SLUG = validate.Regexp(
    r"^[a-z0-9]+(-[a-z0-9]+)*$", error="Use lower-case letters, digits and dashes."
)


class TargetSchema(Schema):
    id = fields.Int(dump_only=True)
    name = fields.Str(required=True, validate=validate.Length(min=1, max=300))
    title = fields.Str(allow_none=True, validate=validate.Length(max=300))
    organisation = fields.Str(allow_none=True, validate=validate.Length(max=300))
    salutation = fields.Str(
        required=True,
        validate=validate.Length(min=1, max=300),
        metadata={"description": "How the letter opens, e.g. `Dear Acting Director Lyons`."},
    )
    email = fields.Email(allow_none=True, validate=validate.Length(max=320))
    postal_address = fields.Str(allow_none=True, validate=validate.Length(max=2000))
    position = fields.Int(dump_only=True)


class CampaignInSchema(Schema):
    title = fields.Str(required=True, validate=validate.Length(min=1, max=300))
    slug = fields.Str(required=True, validate=[validate.Length(min=1, max=120), SLUG])
    reference = fields.Str(allow_none=True, validate=validate.Length(max=100))
    summary = fields.Str(
        allow_none=True,
        validate=validate.Length(max=50_000),
        metadata={"description": "Limited HTML; sanitised before display."},
    )
    kind = fields.Str(required=True, validate=validate.OneOf([k.value for k in CampaignKind]))
    external_url = fields.Url(allow_none=True, schemes={"http", "https"})
    deadline = fields.AwareDateTime(
        allow_none=True, metadata={"description": "A UTC timestamp; or give `deadline_date`."}
    )
    deadline_date = fields.Date(
        load_only=True,
        metadata={"description": "The last day to act: the deadline is its end in `timezone`."},
    )
    timezone = fields.Str(load_default=None, validate=validate.Length(max=64))
    thank_you = fields.Str(allow_none=True, validate=validate.Length(max=20_000))
    letter_subject = fields.Str(allow_none=True, validate=validate.Length(max=998))
    letter_body = fields.Str(
        allow_none=True,
        validate=validate.Length(max=20_000),
        metadata={"description": "Placeholders: {salutation}, {supporter_name}, {supporter_town}."},
    )
    status = fields.Str(
        validate=validate.OneOf([s.value for s in CampaignStatus]),
        metadata={
            "description": "Default `draft`: invisible to the public and not yet actionable; "
            "open it once reviewed. A mailing linked to it cannot be sent until it is `open`."
        },
    )
    targets = fields.List(fields.Nested(TargetSchema), metadata={"description": "Replaces all."})

    @validates_schema
    def _deadline_once(self, data, **kwargs):
        if data.get("deadline") and data.get("deadline_date"):
            raise ValidationError("Give `deadline` or `deadline_date`, not both.", "deadline")


class CampaignPatchSchema(CampaignInSchema):
    """Every field optional: the API loads it with partial=True."""


class CampaignSchema(Schema):
    id = fields.Int()
    title = fields.Str()
    slug = fields.Str()
    reference = fields.Str(allow_none=True)
    summary = fields.Str(allow_none=True)
    kind = fields.Function(lambda c: c.kind.value)
    external_url = fields.Str(allow_none=True)
    deadline = fields.DateTime(allow_none=True)
    timezone = fields.Str()
    thank_you = fields.Str(allow_none=True)
    letter_subject = fields.Str(allow_none=True)
    letter_body = fields.Str(allow_none=True)
    status = fields.Function(lambda c: c.status.value)
    is_open = fields.Function(
        lambda c: c.is_open(), metadata={"description": "Status and deadline."}
    )
    public_url = fields.Function(lambda c: f"/campaigns/{c.slug}")
    targets = fields.List(fields.Nested(TargetSchema))
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class ActionSchema(Schema):
    id = fields.Int()
    supporter_id = fields.Int(allow_none=True)
    mailing_id = fields.Int(allow_none=True)
    channel = fields.Str()
    letter_subject = fields.Str(allow_none=True)
    letter_body = fields.Str(allow_none=True)
    created_at = fields.DateTime()


class LetterSchema(Schema):
    id = fields.Int()
    action_id = fields.Int()
    target_id = fields.Int()
    status = fields.Function(lambda letter: letter.status.value)
    attempts = fields.Int()
    sent_at = fields.DateTime(allow_none=True)
    message_id = fields.Str(allow_none=True)
    error = fields.Str(allow_none=True)
    created_at = fields.DateTime()


class LetterQuerySchema(PageArgsSchema):
    status = fields.Str(validate=validate.OneOf([s.value for s in LetterStatus]))


class PendingSummarySchema(Schema):
    waiting = fields.Int(metadata={"description": "Actions typed on public forms, unconfirmed."})
    flagged = fields.Int(metadata={"description": "Unconfirmed ones that came in a burst."})
    confirmed = fields.Int()
    last_hour = fields.Int(metadata={"description": "Held in the last hour, confirmed or not."})
    flagged_reasons = fields.Dict(keys=fields.Str(), values=fields.Int())
    window_days = fields.Int(metadata={"description": "Rows older than this are deleted."})
