"""Staff pages: Reports — mailings compared side by side, and one campaign's report."""

from __future__ import annotations

from datetime import UTC, datetime, time

from flask import Response, abort, render_template, request, stream_with_context
from flask_wtf import FlaskForm
from wtforms import DateField, IntegerField, SelectField, StringField
from wtforms.fields import SelectChoice
from wtforms.validators import NumberRange, Optional

from app.auth.models import Role
from app.campaigns import reports
from app.campaigns.models import Campaign
from app.campaigns.services import list_campaigns
from app.errors import DomainError
from app.extensions import db
from app.staff.access import requires, staff_blueprint
from app.staff.charts import Series, grouped_bars
from app.staff.forms import show_errors
from app.tracking.comparisons import MAX_COMPARED, MailingSelection

blueprint = staff_blueprint("staff_reports", __name__, url_prefix="/staff/reports")

CAMPAIGN_MENU_LIMIT = 500
FILTERS = ("last", "sent_after", "sent_before", "campaign_id", "target_domain")


class ComparisonForm(FlaskForm):
    """The comparison's filters, read from the query string (a GET form: no CSRF token)."""

    class Meta:
        csrf = False

    last = IntegerField("Last mailings", validators=[Optional(), NumberRange(1, MAX_COMPARED)])
    sent_after = DateField("Sent on or after", validators=[Optional()])
    sent_before = DateField("Sent before", validators=[Optional()])
    campaign_id = SelectField("Campaign", validators=[Optional()], validate_choice=True)
    target_domain = StringField("Letters to targets at", validators=[Optional()])


def _comparison_form() -> ComparisonForm:
    form = ComparisonForm(request.args)
    campaigns = list_campaigns({"page": 1, "page_size": CAMPAIGN_MENU_LIMIT})["items"]
    form.campaign_id.choices = [
        SelectChoice("", "Any campaign"),
        *(SelectChoice(str(c.id), c.title) for c in campaigns),
    ]
    return form


def _midnight(day) -> datetime | None:
    return datetime.combine(day, time(), tzinfo=UTC) if day else None


def _compare(form: ComparisonForm) -> reports.Comparison | None:
    """Return the comparison the form asks for, or None with the refusal under its fields."""
    if not form.validate():
        return None
    selection = MailingSelection(
        form.last.data,
        _midnight(form.sent_after.data),
        _midnight(form.sent_before.data),
        int(form.campaign_id.data) if form.campaign_id.data else None,
    )
    letters = reports.LetterFilter(target_domain=form.target_domain.data or None)
    try:
        return reports.compare_mailings(selection, letters, request.args.get("sort"))
    except DomainError as exc:
        show_errors(form, exc, "last")
        return None


def filter_arguments() -> dict[str, str]:
    """The filters as given, for links that keep them (sort headers, the CSV download)."""
    return {name: request.args[name] for name in FILTERS if request.args.get(name)}


@blueprint.get("/")
@requires(Role.ANALYST)
def index():
    form = _comparison_form()
    comparison = _compare(form)
    return render_template(
        "staff/reports/index.html",
        form=form,
        comparison=comparison,
        columns=[c for c in reports.COLUMNS if c.key in SHOWN_COLUMNS],
        labels={c.key: c.label for c in reports.COLUMNS},
        filters=filter_arguments(),
    ), (200 if comparison is not None else 422)


# The page shows the figures people compare; the CSV (and the API) has every column.
SHOWN_COLUMNS = (
    "name",
    "sent_at",
    "delivered",
    "human_opens",
    "human_clicks",
    "actions",
    "unsubscribes",
    "bounced",
    "letters",
    "human_open_rate",
    "human_click_rate",
    "action_rate",
    "unsubscribe_rate",
    "bounce_rate",
    "actions_per_1000",
    "letters_per_1000",
)


@blueprint.get("/mailings.csv")
@requires(Role.ANALYST)
def comparison_csv():
    form = _comparison_form()
    comparison = _compare(form)
    if comparison is None:
        return index()
    return Response(
        stream_with_context(reports.csv_lines(*reports.comparison_table(comparison))),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="mailings-compared.csv"'},
    )


@blueprint.get("/campaigns/<int:campaign_id>")
@requires(Role.ANALYST)
def campaign(campaign_id: int):
    found = db.session.get(Campaign, campaign_id)
    if found is None:
        abort(404)
    report = reports.campaign_report(found)
    return render_template(
        "staff/reports/campaign.html",
        report=report,
        chart=actions_chart(report),
    )


@blueprint.get("/campaigns/<int:campaign_id>/<any(daily, sources, targets):table>.csv")
@requires(Role.ANALYST)
def campaign_csv(campaign_id: int, table: str):
    found = db.session.get(Campaign, campaign_id)
    if found is None:
        abort(404)
    header, rows = reports.campaign_table(reports.campaign_report(found), table)
    return Response(
        stream_with_context(reports.csv_lines(header, rows)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="campaign-{found.id}-{table}.csv"'},
    )


def actions_chart(report: reports.CampaignReport):
    """Draw actions per day, through mailings and on the public page, or None without any."""
    if not report.daily:
        return None
    labels = [d.day.strftime("%d %b") for d in report.daily]
    mailed = [d.from_mailings for d in report.daily]
    other = [d.without_mailing for d in report.daily]
    description = (
        f"Actions per day (UTC) from {labels[0]} to {labels[-1]}: {sum(mailed)} through "
        f"mailings, most in one day {max(mailed)}; {sum(other)} on the public page, most in "
        f"one day {max(other)}."
    )
    return grouped_bars(
        "Actions per day, through mailings and on the public page",
        description,
        labels,
        [Series("through mailings", "human", mailed), Series("public page", "machine", other)],
    )
