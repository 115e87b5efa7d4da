"""Staff pages: Results — sent mailings with their figures, one mailing's report in detail."""

from __future__ import annotations

from flask import Response, abort, render_template, request, stream_with_context

from app.auth.models import Role
from app.staff.access import requires, staff_blueprint
from app.staff.charts import Series, grouped_bars
from app.staff.mailings.ab_summary import ab_summary
from app.tracking import breakdowns, overview, report_csv, reports

blueprint = staff_blueprint("staff_results", __name__, url_prefix="/staff/results")

# (kind, heading, the bucket counters drawn: (people, every recipient) or people alone).
CHARTS = (
    ("open", "Opens", "human_opens", "opens"),
    ("click", "Clicks", "human_clicks", "clicks"),
    ("action", "Actions", "actions", None),
)
BREAKDOWN_LABELS = {"list": "List", "tag": "Tag", "segment": "Segment"}


@blueprint.get("/")
@requires(Role.ANALYST)
def index():
    after = request.args.get("after", type=int)  # anything not a number: the first page
    mailings, next_after = overview.results_page(after)
    return render_template(
        "staff/results/index.html", mailings=mailings, next_after=next_after, after=after
    )


@blueprint.get("/<int:mailing_id>")
@requires(Role.ANALYST)
def mailing(mailing_id: int):
    report = reports.mailing_report(mailing_id)
    if report is None:
        abort(404)
    by = request.args.get("breakdown") or None
    breakdown_error = None
    if by is not None and by not in breakdowns.BREAKDOWNS:
        breakdown_error, by = "Choose to break the figures down by list, tag or segment.", None
    ids = request.args.getlist("ids", type=int) or None  # non-numbers are dropped
    return render_template(
        "staff/results/mailing.html",
        report=report,
        labels=bucket_labels(report.timeline),
        charts=timeline_charts(report.timeline),
        by=by,
        breakdown_labels=BREAKDOWN_LABELS,
        breakdown_error=breakdown_error,
        groups=breakdowns.breakdown(mailing_id, by, ids) if by else None,
        ab=ab_summary(report.mailing),
    )


@blueprint.get("/<int:mailing_id>/<any(deliveries, events, links):table>.csv")
@requires(Role.ANALYST)
def export(mailing_id: int, table: str):
    return Response(
        stream_with_context(report_csv.export_csv(mailing_id, table)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="mailing-{mailing_id}-{table}.csv"'},
    )


def bucket_labels(timeline: list[reports.Bucket]) -> list[str]:
    return [b.start.strftime("%d %b %H:%M" if b.unit == "hour" else "%d %b") for b in timeline]


def timeline_charts(timeline: list[reports.Bucket]) -> list[tuple[str, str, object]]:
    """Return (kind, heading, svg) for each charted kind, or [] when nothing happened yet."""
    if not timeline:
        return []
    labels = bucket_labels(timeline)
    daily = any(b.unit == "day" for b in timeline)
    per = "per hour for the first 72 hours, then per day (UTC)" if daily else "per hour (UTC)"
    charts = []
    for kind, heading, human_counter, all_counter in CHARTS:
        human = [getattr(b, human_counter) for b in timeline]
        series = [Series("people", "human", human)]
        description = (
            f"Recipients doing it for the first time, {heading.lower()} {per}, from "
            f"{labels[0]} to {labels[-1]}: {sum(human)} people, most in one bar {max(human)}"
        )
        if all_counter:
            every = [getattr(b, all_counter) for b in timeline]
            series.append(Series("all recipients", "all", every))
            description += f"; {sum(every)} recipients counting machines, most {max(every)}"
        svg = grouped_bars(f"{heading} {per}", description + ".", labels, series)
        charts.append((kind, heading, svg))
    return charts
