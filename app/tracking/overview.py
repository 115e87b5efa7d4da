"""What the staff dashboard and results list show: mailings with their figures.

Figures come from app/tracking/stats.py and the rollups app/tracking/rollups.py keeps (per
mailing, per hour, per link), for many mailings at once, so a page costs the same handful of
queries however many mailings, deliveries and events there are. One mailing's report (over time,
per link, broken down) is app/tracking/reports.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import or_, select

from app.extensions import db
from app.mailings.compose.services import mailings_newest_first, status_report
from app.mailings.models import Mailing, MailingStatus
from app.tracking.reports import rate
from app.tracking.stats import bounces_for_mailings, stats_for_mailings

RECENT_RESULTS = 10
RESULTS_PAGE_SIZE = 20
IN_PROGRESS = (MailingStatus.SENDING, MailingStatus.PAUSED)
# A mailing has results once it started sending; one cancelled before it started has none.
HAS_RESULTS = or_(Mailing.started_at.is_not(None), Mailing.status == MailingStatus.SENT)
FINISHED = Mailing.status.in_((MailingStatus.SENT, MailingStatus.CANCELLED))


@dataclass(frozen=True)
class MailingFigures:
    """A mailing with its mailing_stats figures (and bounces, where the page shows them)."""

    mailing: Mailing
    stats: dict
    bounces: dict = field(default_factory=lambda: {"bounced": 0, "complaints": 0})

    @property
    def delivered(self) -> int:
        return self.stats["deliveries"]["sent"]

    def rate(self, count: int) -> float | None:
        return rate(count, self.delivered)

    def machine_only(self, name: str) -> int:
        """Recipients counted in the figure who were seen only through machines: all − human."""
        return self.stats[name]["all"] - self.stats[name]["human"]


@dataclass(frozen=True)
class Dashboard:
    in_progress: list[dict]
    scheduled: list[Mailing]
    recent: list[MailingFigures]
    has_mailings: bool


def dashboard() -> Dashboard:
    """Return the mailings sending and scheduled, and the latest finished ones with figures."""
    recent = db.session.scalars(
        mailings_newest_first().where(FINISHED, HAS_RESULTS).limit(RECENT_RESULTS)
    ).all()
    scheduled = db.session.scalars(
        select(Mailing)
        .where(Mailing.status == MailingStatus.SCHEDULED)
        .order_by(Mailing.scheduled_at.nulls_last(), Mailing.id)
    ).all()
    has_mailings = bool(recent or scheduled) or db.session.scalar(
        select(select(Mailing.id).exists())
    )
    return Dashboard(
        in_progress=live_progress(),
        scheduled=list(scheduled),
        recent=with_figures(recent),
        has_mailings=bool(has_mailings),
    )


def live_progress() -> list[dict]:
    """Return status_report for each mailing sending or paused, with the mailing, oldest first.

    One progress query per mailing in progress: there are only ever a few at once, and
    status_report is where done, rate and time left are defined.
    """
    mailings = db.session.scalars(
        select(Mailing).where(Mailing.status.in_(IN_PROGRESS)).order_by(Mailing.id)
    ).all()
    return [status_report(mailing) | {"mailing": mailing} for mailing in mailings]


def with_figures(mailings: list[Mailing], *, bounces: bool = False) -> list[MailingFigures]:
    ids = [m.id for m in mailings]
    stats = stats_for_mailings(ids)
    if not bounces:
        return [MailingFigures(m, stats[m.id]) for m in mailings]
    bounced = bounces_for_mailings(ids)
    return [MailingFigures(m, stats[m.id], bounced[m.id]) for m in mailings]


def results_page(after: int | None = None, size: int = RESULTS_PAGE_SIZE):
    """Return (mailings with results, newest first, with figures; the id to page on or None)."""
    stmt = mailings_newest_first().where(HAS_RESULTS)
    if after is not None:
        stmt = stmt.where(Mailing.id < after)
    mailings = db.session.scalars(stmt.limit(size + 1)).all()
    more = len(mailings) > size
    mailings = mailings[:size]
    return with_figures(mailings, bounces=True), (mailings[-1].id if more else None)
