"""What staff send to set up an A/B test, and what the API answers about it."""

from __future__ import annotations

from marshmallow import fields, validate

from app.api.schemas import ClarionSchema as Schema
from app.mailings.models import MAX_VARIANTS, MIN_VARIANTS, AbMetric, AbSelection

MAX_WAIT_MINUTES = 7 * 24 * 60


def _text(max_length: int, description: str):
    return fields.Str(
        allow_none=True,
        load_default=None,
        validate=validate.Length(max=max_length),
        metadata={"description": description},
    )


def _rate(description: str, **kwargs):
    return fields.Float(
        allow_none=True,
        load_default=None,
        allow_nan=False,
        validate=validate.Range(min=0, max=1, min_inclusive=False, max_inclusive=False),
        metadata={"description": description},
        **kwargs,
    )


class VariantInSchema(Schema):
    """One variant: each field left out or null is the mailing's own."""

    subject = _text(998, "Merge fields allowed, as in the mailing's subject.")
    from_name = _text(200, "The sender's display name.")
    preheader = _text(300, "The preview text inboxes show after the subject.")
    body_mjml = _text(1_000_000, "A body of its own (its links are tracked apart).")
    body_text = _text(1_000_000, "A text part of its own.")


class AbTestInSchema(Schema):
    test_fraction = fields.Float(
        required=True,
        allow_nan=False,
        validate=validate.Range(min=0.02, max=1),
        metadata={
            "description": "Share of the audience in the test, split evenly between the "
            "variants (0.2 = 20 %); 1 sends every variant to an equal share of everyone."
        },
    )
    wait_minutes = fields.Int(
        strict=True,
        required=True,
        validate=validate.Range(min=1, max=MAX_WAIT_MINUTES),
        metadata={"description": "From the start of the send to the decision."},
    )
    metric = fields.Str(
        load_default=AbMetric.CLICKS.value,
        validate=validate.OneOf([m.value for m in AbMetric]),
        metadata={"description": "The winner has the most unique people who did this."},
    )
    selection = fields.Str(
        load_default=AbSelection.AUTO.value,
        validate=validate.OneOf([s.value for s in AbSelection]),
        metadata={
            "description": "auto: the winner goes to the rest when the wait is over; "
            "manual: staff pick it (POST …/ab-test/winner)."
        },
    )
    min_confidence = fields.Float(
        allow_none=True,
        load_default=None,
        allow_nan=False,
        validate=validate.Range(min=0.5, max=1, max_inclusive=False),
        metadata={"description": "auto only: below this probability to be best, wait for staff."},
    )
    max_unsubscribe_rate = _rate("Stop a variant whose unsubscribe rate passes this (0.01 = 1 %).")
    max_complaint_rate = _rate("Stop a variant whose complaint rate passes this (0.003 = 0.3 %).")
    breaker_min_sent = fields.Int(
        strict=True,
        load_default=100,
        validate=validate.Range(min=1, max=10_000_000),
        metadata={"description": "The limits apply once a variant was sent to this many."},
    )
    variants = fields.List(
        fields.Nested(VariantInSchema),
        required=True,
        validate=validate.Length(min=MIN_VARIANTS, max=MAX_VARIANTS),
        metadata={"description": "2-5 variants, A first (usually all null: the mailing itself)."},
    )


class WinnerInSchema(Schema):
    variant = fields.Str(
        required=True,
        validate=validate.Length(min=1, max=1),
        metadata={"description": "The winner's letter, A-E."},
    )


class VariantResultSchema(Schema):
    label = fields.Str()
    subject = fields.Str()
    from_name = fields.Str(allow_none=True)
    recipients = fields.Int()
    sent = fields.Int()
    opens = fields.Int(metadata={"description": "Unique recipients who opened (all)."})
    human_opens = fields.Int(metadata={"description": "Unique people who opened."})
    clicks = fields.Int()
    human_clicks = fields.Int()
    actions = fields.Int()
    unsubscribes = fields.Int()
    complaints = fields.Int()
    hard_bounces = fields.Int()
    successes = fields.Int(metadata={"description": "Unique people counted by the metric."})
    rate = fields.Float(allow_none=True, metadata={"description": "successes / sent."})
    probability_best = fields.Float(
        allow_none=True, metadata={"description": "Bayesian probability to have the best rate."}
    )
    stopped_at = fields.DateTime(allow_none=True)
    stopped_reason = fields.Str(allow_none=True)


class VariantSettingsSchema(Schema):
    label = fields.Str()
    subject = fields.Str(allow_none=True)
    from_name = fields.Str(allow_none=True)
    preheader = fields.Str(allow_none=True)
    body_mjml = fields.Str(allow_none=True)
    body_text = fields.Str(allow_none=True)


class AbTestSchema(Schema):
    mailing_id = fields.Int()
    state = fields.Str(
        metadata={"description": "draft, scheduled, testing, waiting_for_pick or decided."}
    )
    note = fields.Str(allow_none=True)
    metric = fields.Str()
    selection = fields.Str()
    test_fraction = fields.Float()
    wait_minutes = fields.Int()
    test_recipients = fields.Int()
    rest_recipients = fields.Int()
    decide_at = fields.DateTime(allow_none=True)
    settings = fields.Dict()
    leader = fields.Str(allow_none=True)
    confidence = fields.Float(
        allow_none=True, metadata={"description": "The leader's probability to be best."}
    )
    p_value = fields.Float(
        allow_none=True,
        metadata={"description": "Leader against runner-up: two-sided two-proportion z-test."},
    )
    winner = fields.Str(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)
    decided_by = fields.Str(allow_none=True)
    decided_confidence = fields.Float(allow_none=True)
    variants = fields.List(fields.Nested(VariantResultSchema))
    variant_settings = fields.List(fields.Nested(VariantSettingsSchema))
