"""Reports on campaigns: one campaign's actions and letters, and mailings compared by letters.

A campaign report answers "what moved people to act, and did the letters get out": actions per
day, actions by source (each mailing, or none — the public page), and each target's letters by
delivery state. The comparison is app/tracking/comparisons.py's table of mailings with the
letters their actions wrote beside it, so "which alert drove the most letters to ICE per 1,000
delivered" is one sort of one table.

Actions and letters are always people: an action is a form a person submitted (with consent),
never a fetch by a mail scanner, so they need no human-only share. Every query is grouped in
the database; none reads rows per action or per letter.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Date, and_, cast, func, or_, select

from app.campaigns.models import Action, Campaign, CampaignTarget, Letter, LetterStatus
from app.campaigns.overviews import letter_counts
from app.errors import Invalid
from app.extensions import db
from app.mailings.models import Mailing
from app.supporters.csvcells import spreadsheet_safe
from app.tracking.comparisons import MailingSelection, mailing_rows, per_thousand, select_mailings

LETTER_STATES = tuple(s.value for s in LetterStatus)
# The public page, and any other way of acting that came through no mailing.
NO_MAILING = "without a mailing (the public page)"


class ReportError(Invalid, ValueError):
    """A report filter the service cannot use; `details` names the filter."""


@dataclass(frozen=True)
class DailyActions:
    day: date  # UTC
    from_mailings: int
    without_mailing: int

    @property
    def total(self) -> int:
        return self.from_mailings + self.without_mailing


@dataclass(frozen=True)
class ActionSource:
    mailing_id: int | None  # None: the public page (no mailing)
    name: str
    actions: int
    letters: int
    by_channel: dict[str, int]  # email, not_me (a forwarded link), public …


@dataclass(frozen=True)
class TargetLetters:
    target_id: int
    name: str
    organisation: str | None
    email_domain: str | None
    by_status: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_status.values())


@dataclass(frozen=True)
class CampaignReport:
    campaign: Campaign
    daily: list[DailyActions]
    sources: list[ActionSource]
    targets: list[TargetLetters]
    totals: dict = field(default_factory=dict)


def campaign_report(campaign: Campaign) -> CampaignReport:
    """Return the campaign's actions per day and by source, and its letters per target."""
    daily = daily_actions(campaign.id)
    sources = actions_by_source(campaign.id)
    targets = letters_per_target(campaign)
    letters = {state: sum(t.by_status[state] for t in targets) for state in LETTER_STATES}
    totals = {
        "actions": sum(s.actions for s in sources),
        "from_mailings": sum(s.actions for s in sources if s.mailing_id is not None),
        "without_mailing": sum(s.actions for s in sources if s.mailing_id is None),
        "mailings": sum(1 for s in sources if s.mailing_id is not None),
        "letters": letters,
        "letters_total": sum(letters.values()),
    }
    return CampaignReport(campaign, daily, sources, targets, totals)


def daily_actions(campaign_id: int) -> list[DailyActions]:
    """Return actions per UTC day from the first to the last, gaps as zero.

    One GROUP BY over the campaign's actions by created_at. The (campaign_id, supporter_id)
    unique index finds the campaign's rows; an index on (campaign_id, created_at) would let
    PostgreSQL count from the index alone (see the report that added this module).
    """
    day = _utc_day(Action.created_at)
    rows = db.session.execute(
        select(
            day,
            func.count().filter(Action.mailing_id.is_not(None)),
            func.count().filter(Action.mailing_id.is_(None)),
        )
        .where(Action.campaign_id == campaign_id)
        .group_by(day)
        .order_by(day)
    ).all()
    if not rows:
        return []
    # SQLite answers the day as text.
    rows = [(date.fromisoformat(d) if isinstance(d, str) else d, *n) for d, *n in rows]
    counted = {d: (mailed, other) for d, mailed, other in rows}
    first, last = rows[0][0], rows[-1][0]
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return [DailyActions(d, *counted.get(d, (0, 0))) for d in days]


def _utc_day(column):
    """SQL: the UTC calendar day of a timestamp, on PostgreSQL and on a local run's SQLite."""
    if db.session.get_bind().dialect.name == "sqlite":
        return func.date(column)  # SQLite keeps UTC timestamps as text without a zone
    return cast(func.timezone("UTC", column), Date)


def actions_by_source(campaign_id: int) -> list[ActionSource]:
    """Return actions and their letters per mailing that drove them, most actions first."""
    rows = db.session.execute(
        select(
            Action.mailing_id,
            Action.channel,
            func.count(Action.id.distinct()),
            func.count(Letter.id),
        )
        .outerjoin(Letter, Letter.action_id == Action.id)
        .where(Action.campaign_id == campaign_id)
        .group_by(Action.mailing_id, Action.channel)
    ).all()
    names = dict(
        db.session.execute(
            select(Mailing.id, Mailing.name).where(
                Mailing.id.in_({r[0] for r in rows if r[0] is not None})
            )
        ).all()
    )
    merged: dict[int | None, dict] = {}
    for mailing_id, channel, actions, letters in rows:
        source = merged.setdefault(mailing_id, {"actions": 0, "letters": 0, "by_channel": {}})
        source["actions"] += actions
        source["letters"] += letters
        source["by_channel"][channel] = actions
    sources = [
        ActionSource(
            mailing_id,
            NO_MAILING if mailing_id is None else names.get(mailing_id, f"Mailing {mailing_id}"),
            **counts,
        )
        for mailing_id, counts in merged.items()
    ]
    return sorted(sources, key=lambda s: (-s.actions, s.mailing_id is None, s.mailing_id or 0))


def letters_per_target(campaign: Campaign) -> list[TargetLetters]:
    """Return each target's letters by delivery state (queued, sent, failed, held)."""
    counts = letter_counts(campaign.id)
    return [
        TargetLetters(
            target.id,
            target.name,
            target.organisation,
            email_domain(target.email),
            {state: counts.get(target.id, {}).get(state, 0) for state in LETTER_STATES},
        )
        for target in campaign.targets
    ]


def email_domain(address: str | None) -> str | None:
    return address.rsplit("@", 1)[1].lower() if address and "@" in address else None


# ---- Mailings compared, with the letters their actions wrote ---------------------------------

_DOMAIN = re.compile(
    r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$"
)


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str  # "text", "count", "rate" (a share), "per_1000", "time"


COLUMNS = (
    Column("mailing_id", "Mailing id", "count"),
    Column("name", "Mailing", "text"),
    Column("subject", "Subject", "text"),
    Column("campaign_id", "Campaign id", "count"),
    Column("status", "Status", "text"),
    Column("sent_at", "Sent", "time"),
    Column("delivered", "Delivered", "count"),
    Column("failed", "Failed", "count"),
    Column("bounced", "Bounced", "count"),
    Column("complaints", "Complaints", "count"),
    Column("opens", "Opens (all)", "count"),
    Column("human_opens", "Opens (people)", "count"),
    Column("clicks", "Clicks (all)", "count"),
    Column("human_clicks", "Clicks (people)", "count"),
    Column("actions", "Actions", "count"),
    Column("unsubscribes", "Unsubscribes", "count"),
    Column("letters", "Letters", "count"),
    Column("letters_sent", "Letters sent", "count"),
    Column("human_open_rate", "Open rate (people)", "rate"),
    Column("human_click_rate", "Click rate (people)", "rate"),
    Column("human_click_to_open", "Click-to-open (people)", "rate"),
    Column("action_rate", "Action rate", "rate"),
    Column("unsubscribe_rate", "Unsubscribe rate", "rate"),
    Column("bounce_rate", "Bounce rate", "rate"),
    Column("complaint_rate", "Complaint rate", "rate"),
    Column("actions_per_1000", "Actions per 1,000 delivered", "per_1000"),
    Column("letters_per_1000", "Letters per 1,000 delivered", "per_1000"),
)
COLUMN_KEYS = tuple(c.key for c in COLUMNS)
SORT_KEYS = COLUMN_KEYS + tuple(f"-{k}" for k in COLUMN_KEYS)
DEFAULT_SORT = "-sent_at"


@dataclass(frozen=True)
class LetterFilter:
    """Which letters count as "letters" in a comparison: all, or one target's, or a domain's."""

    target_id: int | None = None
    target_domain: str | None = None  # "ice.example" also matches "dhs.ice.example"

    def check(self) -> LetterFilter:
        if self.target_domain is None:
            return self
        domain = self.target_domain.strip().lower().lstrip("@")
        if not _DOMAIN.match(domain):
            raise ReportError(
                "That is not an email domain.",
                {"target_domain": ["Give a domain such as ice.example, without the @."]},
            )
        return LetterFilter(self.target_id, domain)


@dataclass(frozen=True)
class Comparison:
    rows: list[dict]
    sort: str
    truncated: bool
    letters: LetterFilter


def compare_mailings(
    selection: MailingSelection,
    letters: LetterFilter | None = None,
    sort: str | None = None,
) -> Comparison:
    """Return the selected mailings' figures and letters, sorted by `sort` ("-key": descending)."""
    sort = sort or DEFAULT_SORT
    if sort not in SORT_KEYS:
        raise ReportError("Unknown sort column.", {"sort": [f"No column {sort!r} to sort by."]})
    letters = (letters or LetterFilter()).check()
    selected = select_mailings(selection)
    rows = mailing_rows(selected.mailings)
    written = letters_by_mailing([r["mailing_id"] for r in rows], letters)
    for row in rows:
        total, sent = written.get(row["mailing_id"], (0, 0))
        row["letters"], row["letters_sent"] = total, sent
        row["letters_per_1000"] = per_thousand(total, row["delivered"])
    return Comparison(sort_rows(rows, sort), sort, selected.truncated, letters)


def letters_by_mailing(mailing_ids: list[int], letters: LetterFilter) -> dict[int, tuple[int, int]]:
    """Return {mailing id: (letters written, letters sent)} of actions each mailing drove."""
    if not mailing_ids:
        return {}
    stmt = (
        select(
            Action.mailing_id,
            func.count(),
            func.count().filter(Letter.status == LetterStatus.SENT),
        )
        .join(Letter, Letter.action_id == Action.id)
        .where(Action.mailing_id.in_(mailing_ids))
        .group_by(Action.mailing_id)
    )
    if letters.target_id is not None:
        stmt = stmt.where(Letter.target_id == letters.target_id)
    if letters.target_domain is not None:
        address = func.lower(CampaignTarget.email)
        # The domain was checked against _DOMAIN: it holds no LIKE wildcard.
        stmt = stmt.join(CampaignTarget, CampaignTarget.id == Letter.target_id).where(
            and_(
                CampaignTarget.email.is_not(None),
                or_(
                    address.like(f"%@{letters.target_domain}"),
                    address.like(f"%@%.{letters.target_domain}"),
                ),
            )
        )
    return {mailing_id: (total, sent) for mailing_id, total, sent in db.session.execute(stmt)}


def sort_rows(rows: list[dict], sort: str) -> list[dict]:
    """Sort by one column, ties newest first; rows without a value (no rate) always last."""
    key = sort.lstrip("-")
    descending = sort.startswith("-")
    newest_first = sorted(rows, key=lambda r: (r["sent_at"], r["mailing_id"]), reverse=True)
    known = [r for r in newest_first if r[key] is not None]
    unknown = [r for r in newest_first if r[key] is None]
    text = next((c.kind == "text" for c in COLUMNS if c.key == key), False)
    known.sort(key=lambda r: r[key].casefold() if text else r[key], reverse=descending)
    return known + unknown


# ---- CSV: the same tables, streamed a line at a time --------------------------------------


def comparison_table(comparison: Comparison) -> tuple[list[str], Iterable[list]]:
    return list(COLUMN_KEYS), ([row[key] for key in COLUMN_KEYS] for row in comparison.rows)


def _daily(report):
    header = ["day", "from_mailings", "without_mailing", "total"]
    return header, ([d.day, d.from_mailings, d.without_mailing, d.total] for d in report.daily)


def _sources(report):
    header = ["mailing_id", "name", "actions", "letters", "email", "not_me", "public"]
    return header, (
        [s.mailing_id, s.name, s.actions, s.letters]
        + [s.by_channel.get(c, 0) for c in ("email", "not_me", "public")]
        for s in report.sources
    )


def _targets(report):
    header = ["target_id", "name", "organisation", "email_domain", *LETTER_STATES, "total"]
    return header, (
        [t.target_id, t.name, t.organisation, t.email_domain]
        + [t.by_status[s] for s in LETTER_STATES]
        + [t.total]
        for t in report.targets
    )


CAMPAIGN_TABLES = {"daily": _daily, "sources": _sources, "targets": _targets}


def campaign_table(report: CampaignReport, table: str):
    """Return (header, rows) of one table of the report: daily, sources or targets."""
    return CAMPAIGN_TABLES[table](report)


def csv_lines(header: list[str], rows: Iterable[list]) -> Iterator[str]:
    """Yield the CSV a line at a time; text cells made safe for spreadsheets."""
    out = io.StringIO()
    writer = csv.writer(out)
    for values in _chain(header, rows):
        writer.writerow([_cell(v) for v in values])
        yield out.getvalue()
        out.seek(0)
        out.truncate()


def _chain(header, rows):
    yield header
    yield from rows


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, int | date):
        return str(value)
    # Names of mailings and targets are typed by staff: keep spreadsheets from running them.
    return spreadsheet_safe(str(value))
