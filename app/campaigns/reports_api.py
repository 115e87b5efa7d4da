"""Reports under /api/v1: a campaign's report and mailings compared, as JSON or streamed CSV.

Role: `analyst`. The figures are app/campaigns/reports.py and app/tracking/comparisons.py.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from flask import Response, stream_with_context
from marshmallow import ValidationError, fields, validate

from app.api.auth import require_role
from app.api.blueprint import ApiBlueprint, get_or_404
from app.api.schemas import ClarionSchema as Schema
from app.auth.models import Role
from app.campaigns import reports
from app.campaigns.models import Campaign
from app.tracking.comparisons import MAX_COMPARED, MailingSelection

reports_api = ApiBlueprint(
    "reports",
    __name__,
    url_prefix="",
    description="Reports: a campaign's actions and letters; mailings compared side by side.",
)

PEOPLE = "Actions and letters are forms people submitted: there is no machine share."


class Moment(fields.String):
    """An ISO date (its start, 00:00 UTC) or an ISO date-time with its zone."""

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            if isinstance(value, str) and len(value) == 10:
                return datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
            moment = datetime.fromisoformat(value)
        except (TypeError, ValueError) as exc:
            raise ValidationError("Give a date (2026-11-01) or a time with its zone.") from exc
        if moment.utcoffset() is None:
            raise ValidationError("Give the time zone too, e.g. 2026-11-01T00:00:00Z.")
        return moment


class ComparisonArgsSchema(Schema):
    last = fields.Int(
        validate=validate.Range(1, MAX_COMPARED),
        metadata={
            "description": "The last N mailings sent (within the date range, if given). "
            "Default 10 when no date range is given."
        },
    )
    sent_after = Moment(
        metadata={"description": "Mailings sent at or after this date or time (a date: 00:00 UTC)."}
    )
    sent_before = Moment(
        metadata={
            "description": "Mailings sent before this date or time: "
            "`sent_after=2026-11-01&sent_before=2026-12-01` is November."
        }
    )
    campaign_id = fields.Int(metadata={"description": "Only mailings linked to this campaign."})
    target_id = fields.Int(metadata={"description": "Count only letters to this target."})
    target_domain = fields.Str(
        validate=validate.Length(max=253),
        metadata={
            "description": "Count only letters to targets whose email is at this domain "
            "or a subdomain, e.g. `ice.example`."
        },
    )
    sort = fields.Str(
        validate=validate.OneOf(reports.SORT_KEYS),
        metadata={
            "description": "A column of `mailings`; `-column` for descending. Rows without "
            "a value (a rate with nothing delivered) come last. Default `-sent_at`."
        },
    )


def _rate(description: str):
    return fields.Float(allow_none=True, metadata={"description": description})


class ComparedMailingSchema(Schema):
    mailing_id = fields.Int()
    name = fields.Str()
    subject = fields.Str()
    campaign_id = fields.Int(allow_none=True, metadata={"description": "The linked campaign."})
    status = fields.Str()
    sent_at = fields.DateTime(metadata={"description": "When it started sending."})
    delivered = fields.Int(metadata={"description": "Messages the mail server accepted."})
    failed = fields.Int(metadata={"description": "Messages that could not be sent."})
    bounced = fields.Int(metadata={"description": "Recipients with a hard or soft bounce."})
    complaints = fields.Int(metadata={"description": "Recipients who reported spam."})
    opens = fields.Int(metadata={"description": "Distinct recipients who opened, machines too."})
    human_opens = fields.Int(metadata={"description": "Distinct recipients who opened, people."})
    clicks = fields.Int(metadata={"description": "Distinct recipients who clicked, machines too."})
    human_clicks = fields.Int(metadata={"description": "Distinct recipients who clicked, people."})
    actions = fields.Int(metadata={"description": f"Recipients who acted. {PEOPLE}"})
    unsubscribes = fields.Int(metadata={"description": "Recipients who unsubscribed."})
    letters = fields.Int(
        metadata={
            "description": "Letters written by actions this mailing drove (any state), "
            "only to the target or domain asked for. " + PEOPLE
        }
    )
    letters_sent = fields.Int(metadata={"description": "Of `letters`, those sent."})
    human_open_rate = _rate("human_opens / delivered; null when nothing was delivered.")
    human_click_rate = _rate("human_clicks / delivered.")
    human_click_to_open = _rate("human_clicks / human_opens.")
    action_rate = _rate("actions / delivered.")
    unsubscribe_rate = _rate("unsubscribes / delivered.")
    bounce_rate = _rate("bounced / delivered.")
    complaint_rate = _rate("complaints / delivered.")
    actions_per_1000 = _rate("actions per 1,000 delivered.")
    letters_per_1000 = _rate("letters per 1,000 delivered.")


class LetterFilterSchema(Schema):
    target_id = fields.Int(allow_none=True)
    target_domain = fields.Str(allow_none=True)


class ComparisonSchema(Schema):
    mailings = fields.List(fields.Nested(ComparedMailingSchema), attribute="rows")
    sort = fields.Str(metadata={"description": "The order applied."})
    truncated = fields.Bool(
        metadata={"description": f"More than {MAX_COMPARED} mailings matched: the newest shown."}
    )
    letters = fields.Nested(LetterFilterSchema, metadata={"description": "Letters counted."})


class DailyActionsSchema(Schema):
    day = fields.Date(metadata={"description": "A UTC day."})
    from_mailings = fields.Int(metadata={"description": "Actions through a mailing's link."})
    without_mailing = fields.Int(metadata={"description": "Actions on the public page."})
    total = fields.Int()


class ActionSourceSchema(Schema):
    mailing_id = fields.Int(allow_none=True, metadata={"description": "null: the public page."})
    name = fields.Str(metadata={"description": "The mailing's name, or the public page."})
    actions = fields.Int()
    letters = fields.Int(metadata={"description": "Letters those actions wrote, any state."})
    by_channel = fields.Dict(
        keys=fields.Str(),
        values=fields.Int(),
        metadata={"description": "Actions by channel: email, not_me (forwarded), public."},
    )


def _state_counts():
    return {state: fields.Int() for state in reports.LETTER_STATES}


TargetStatesSchema = Schema.from_dict(_state_counts(), name="LetterStatesSchema")


class TargetLettersSchema(Schema):
    target_id = fields.Int()
    name = fields.Str()
    organisation = fields.Str(allow_none=True)
    email_domain = fields.Str(allow_none=True, metadata={"description": "null: post only."})
    by_status = fields.Nested(TargetStatesSchema, metadata={"description": "Letters by state."})
    total = fields.Int()


class ReportTotalsSchema(Schema):
    actions = fields.Int()
    from_mailings = fields.Int()
    without_mailing = fields.Int()
    mailings = fields.Int(metadata={"description": "Mailings that drove at least one action."})
    letters = fields.Nested(TargetStatesSchema)
    letters_total = fields.Int()


class CampaignReportSchema(Schema):
    campaign_id = fields.Function(lambda r: r.campaign.id)
    title = fields.Function(lambda r: r.campaign.title)
    daily = fields.List(fields.Nested(DailyActionsSchema), metadata={"description": PEOPLE})
    sources = fields.List(
        fields.Nested(ActionSourceSchema), metadata={"description": "Most first."}
    )
    targets = fields.List(fields.Nested(TargetLettersSchema))
    totals = fields.Nested(ReportTotalsSchema)


class CampaignCsvArgsSchema(Schema):
    table = fields.Str(
        load_default="sources",
        validate=validate.OneOf(("daily", "sources", "targets")),
        metadata={"description": "Which table of the report: daily, sources (default), targets."},
    )


@reports_api.get("/campaigns/<int:campaign_id>/report")
@require_role(Role.ANALYST)
@reports_api.response(200, CampaignReportSchema)
def campaign_report(campaign_id):
    """Report on a campaign: actions per day and by source, letters per target by state."""
    return reports.campaign_report(get_or_404(Campaign, campaign_id, "campaign"))


@reports_api.get("/campaigns/<int:campaign_id>/report.csv")
@require_role(Role.ANALYST)
@reports_api.arguments(CampaignCsvArgsSchema, location="query")
@reports_api.response(200, description="One table of the report as CSV (text/csv), streamed.")
def campaign_report_csv(args, campaign_id):
    """Export one table of the campaign report as CSV."""
    campaign = get_or_404(Campaign, campaign_id, "campaign")
    report = reports.campaign_report(campaign)
    header, rows = reports.campaign_table(report, args["table"])
    return _csv_response(header, rows, f"campaign-{campaign.id}-{args['table']}.csv")


@reports_api.get("/reports/mailings")
@require_role(Role.ANALYST)
@reports_api.arguments(ComparisonArgsSchema, location="query")
@reports_api.response(200, ComparisonSchema)
def compare_mailings(args):
    """Compare mailings side by side: figures, rates and the letters their actions wrote."""
    return _compare(args)


@reports_api.get("/reports/mailings.csv")
@require_role(Role.ANALYST)
@reports_api.arguments(ComparisonArgsSchema, location="query")
@reports_api.response(200, description="The comparison as CSV (text/csv), streamed.")
def compare_mailings_csv(args):
    """Export the comparison as CSV, one row per mailing, the columns of the JSON answer."""
    comparison = _compare(args)
    return _csv_response(*reports.comparison_table(comparison), "mailings-compared.csv")


def _compare(args) -> reports.Comparison:
    selection = MailingSelection(
        args.get("last"), args.get("sent_after"), args.get("sent_before"), args.get("campaign_id")
    )
    letters = reports.LetterFilter(args.get("target_id"), args.get("target_domain"))
    # A ReportError or ComparisonError is a DomainError: the API answers it as 422 JSON.
    return reports.compare_mailings(selection, letters, args.get("sort"))


def _csv_response(header, rows, filename: str) -> Response:
    return Response(
        stream_with_context(reports.csv_lines(header, rows)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


blueprints = (reports_api,)
