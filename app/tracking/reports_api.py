"""A mailing's report under /api/v1: GET /mailings/ID/report, and its tables as streamed CSV.

Role: `analyst`. The figures are app/tracking/reports.py; every rate is a share of delivered
messages (click-to-open: of openers), null when the whole is 0.
"""

from __future__ import annotations

from dataclasses import fields as fields_of

from flask import Response, stream_with_context
from marshmallow import fields, validate

from app.api.auth import require_role
from app.api.blueprint import ApiBlueprint
from app.api.errors import ApiError
from app.api.schemas import ClarionSchema as Schema
from app.auth.models import Role
from app.mailings.abtest.schemas import AbTestSchema
from app.tracking import breakdowns, report_csv, reports

reports_api = ApiBlueprint(
    "mailing_reports",
    __name__,
    url_prefix="/mailings",
    description="A mailing's report: figures and rates, over time, per link, by list, tag or "
    "segment; its deliveries, events and links as CSV.",
)


def _count(description: str):
    return fields.Int(metadata={"description": description})


def _rate(description: str):
    return fields.Float(
        allow_none=True, metadata={"description": f"{description} Null when the whole is 0."}
    )


class ReportPairSchema(Schema):
    all = _count("Distinct recipients, machines (scanners, privacy proxies) included.")
    human = _count("Distinct recipients seen to be people; machine events never count.")


class ReportRatePairSchema(Schema):
    all = _rate("The rate counting every recipient.")
    human = _rate("The rate counting people only.")


class ReportRatesSchema(Schema):
    open_rate = fields.Nested(
        ReportRatePairSchema, metadata={"description": "Unique opens / delivered."}
    )
    click_rate = fields.Nested(
        ReportRatePairSchema, metadata={"description": "Unique clicks / delivered."}
    )
    click_to_open = fields.Nested(
        ReportRatePairSchema, metadata={"description": "Unique clicks / unique opens."}
    )
    action_rate = _rate("Recipients who acted / delivered.")
    unsubscribe_rate = _rate("Recipients who unsubscribed / delivered.")
    bounce_rate = _rate("Recipients with a hard or soft bounce report / delivered.")
    complaint_rate = _rate("Recipients who reported spam / delivered.")


class ReportBucketSchema(Schema):
    start = fields.DateTime(metadata={"description": "Start of the bucket (UTC)."})
    unit = fields.Str(
        metadata={"description": "'hour' for the first 72 hours after sending started, then 'day'."}
    )
    opens = _count("Recipients whose first open fell in the bucket.")
    human_opens = _count("Recipients whose first open as a person fell in the bucket.")
    clicks = _count("Recipients whose first click fell in the bucket.")
    human_clicks = _count("Recipients whose first click as a person fell in the bucket.")
    actions = _count("Recipients who acted in the bucket.")
    unsubscribes = _count("Recipients who unsubscribed in the bucket.")


class ReportLinkSchema(Schema):
    position = _count("The link's position in the mailing; 0 is the hidden trap link.")
    url = fields.Str(allow_none=True, metadata={"description": "Where the link leads."})
    is_honeypot = fields.Bool(metadata={"description": "A hidden link only machines follow."})
    clicks = _count("Click rows: each recipient at most once as a person, once as a machine.")
    unique = _count("Recipients who clicked the link.")
    unique_human = _count("Recipients who clicked the link as people.")
    human_rate = _rate("unique_human / delivered.")
    variant = fields.Str(
        allow_none=True,
        metadata={"description": "The A/B variant whose own body holds the link; null: all."},
    )


class ReportGroupSchema(Schema):
    group_id = _count("The list, tag or segment id.")
    name = fields.Str(metadata={"description": "Its name."})
    recipients = _count("Recipients of the mailing who are in the group now.")
    delivered = _count("Of those, deliveries the mail server accepted.")
    opens = fields.Nested(ReportPairSchema)
    clicks = fields.Nested(ReportPairSchema)
    actions = _count("Recipients in the group who acted.")
    unsubscribes = _count("Recipients in the group who unsubscribed.")
    open_rate = fields.Nested(ReportRatePairSchema)
    click_rate = fields.Nested(ReportRatePairSchema)
    action_rate = _rate("actions / delivered in the group.")


class ReportSchema(Schema):
    mailing_id = fields.Int(attribute="mailing.id", metadata={"description": "The mailing."})
    name = fields.Str(attribute="mailing.name")
    started_at = fields.DateTime(attribute="mailing.started_at", allow_none=True)
    recipients = _count("Deliveries, whatever their state.")
    sent = _count("Delivered: accepted by the mail server. The whole of every rate.")
    failed = _count("Deliveries that failed for good (including SMTP hard bounces).")
    deferred = _count("Deliveries waiting to be tried again.")
    queued = _count("Deliveries not yet tried (queued or being sent).")
    suppressed = _count("Deliveries skipped: the address opted out or bounced before its turn.")
    cancelled = _count("Deliveries cancelled with the mailing.")
    bounced = _count("Recipients with a hard or soft bounce report.")
    hard_bounces = _count("Recipients with a hard bounce report.")
    soft_bounces = _count("Recipients with a soft bounce report.")
    complaints = _count("Recipients who reported the mail as spam.")
    opens = fields.Nested(ReportPairSchema, metadata={"description": "Unique opens."})
    clicks = fields.Nested(ReportPairSchema, metadata={"description": "Unique clicks."})
    actions = fields.Nested(
        ReportPairSchema, metadata={"description": "Recipients who acted (people only by nature)."}
    )
    unsubscribes = fields.Nested(
        ReportPairSchema,
        metadata={"description": "Recipients who unsubscribed (people by nature)."},
    )
    rates = fields.Nested(ReportRatesSchema)
    timeline = fields.List(fields.Nested(ReportBucketSchema))
    links = fields.List(fields.Nested(ReportLinkSchema))
    ab_test = fields.Nested(
        AbTestSchema,
        allow_none=True,
        metadata={
            "description": "The A/B test, when there is one: unique counts per variant, each "
            "variant's probability to be best, and the winner (as GET …/ab-test)."
        },
    )
    breakdown = fields.List(
        fields.Nested(ReportGroupSchema),
        allow_none=True,
        metadata={"description": "Per list, tag or segment, when `breakdown` was asked for."},
    )


class ReportArgs(Schema):
    breakdown = fields.Str(
        validate=validate.OneOf(breakdowns.BREAKDOWNS),
        metadata={"description": "Break the figures down by list, tag or segment."},
    )
    ids = fields.List(
        fields.Int(validate=validate.Range(min=1)),
        metadata={"description": "Only these lists, tags or segments (repeat: ids=1&ids=2)."},
    )


@reports_api.get("/<int:mailing_id>/report")
@require_role(Role.ANALYST)
@reports_api.arguments(ReportArgs, location="query")
@reports_api.response(200, ReportSchema)
def mailing_report(args, mailing_id):
    """Report a mailing: figures and rates, all and people only, over time, per link."""
    report = reports.mailing_report(mailing_id)
    if report is None:
        raise ApiError(404, "not_found", f"No mailing with id {mailing_id}.")
    by = args.get("breakdown")
    if by is None and "ids" in args:
        raise ApiError(
            422,
            "validation_error",
            "Give `breakdown` (list, tag or segment) with `ids`.",
            {"breakdown": ["Required with ids."]},
        )
    groups = breakdowns.breakdown(mailing_id, by, args.get("ids")) if by else None
    return {field.name: getattr(report, field.name) for field in fields_of(report)} | {
        "breakdown": groups
    }


@reports_api.get("/<int:mailing_id>/report/<any(deliveries, events, links):table>.csv")
@require_role(Role.ANALYST)
@reports_api.response(
    200,
    description="Streamed CSV (text/csv). deliveries: one row per recipient with their outcome "
    "(email blank once erased); events: every tracking event; links: the per-link table.",
)
def download_csv(mailing_id, table):
    """Download the mailing's deliveries, events or links as CSV."""
    return Response(
        stream_with_context(report_csv.export_csv(mailing_id, table)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="mailing-{mailing_id}-{table}.csv"'},
    )


blueprints = (reports_api,)
