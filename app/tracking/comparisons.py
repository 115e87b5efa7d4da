"""Mailings side by side: which mailings to compare, and each one's figures and rates.

The figures are the ones every other report shows (app/tracking/stats.py, read from the
rollups), so a comparison costs a handful of queries however many deliveries and events the
mailings have. Campaign figures (letters) are added one layer up, in app/campaigns/reports.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from app.errors import Invalid
from app.extensions import db
from app.mailings.models import Mailing
from app.tracking.overview import HAS_RESULTS, rate
from app.tracking.stats import bounces_for_mailings, stats_for_mailings

DEFAULT_LAST = 10
# A comparison is a table someone reads: past this many rows it is an export of everything.
MAX_COMPARED = 200


# When a mailing went out: when it started sending. A mailing recorded as sent without a start
# (an import of past mailings) falls back to when its content was frozen, then created.
def sent_time():
    """SQL: when the mailing went out (see the rule above)."""
    return func.coalesce(Mailing.started_at, Mailing.frozen_at, Mailing.created_at)


class ComparisonError(Invalid, ValueError):
    """A selection of mailings that cannot be compared; `details` names the filter."""


@dataclass(frozen=True)
class MailingSelection:
    """Which mailings to compare: the last `last` of those sent in [sent_after, sent_before)."""

    last: int | None = None
    sent_after: datetime | None = None
    sent_before: datetime | None = None
    campaign_id: int | None = None

    def check(self) -> MailingSelection:
        """Return the selection with its default applied, or raise ComparisonError."""
        errors: dict[str, list[str]] = {}
        if self.last is not None and not 1 <= self.last <= MAX_COMPARED:
            errors["last"] = [f"Compare between 1 and {MAX_COMPARED} mailings."]
        for name in ("sent_after", "sent_before"):
            moment = getattr(self, name)
            if moment is not None and moment.utcoffset() is None:
                errors[name] = ["Give a time with its time zone (or a date)."]
        if (
            not errors
            and self.sent_after is not None
            and self.sent_before is not None
            and self.sent_after >= self.sent_before
        ):
            errors["sent_before"] = ["The end of the range must come after its start."]
        if errors:
            raise ComparisonError("These mailings cannot be compared.", errors)
        dated = self.sent_after is not None or self.sent_before is not None
        if self.last is None and not dated:
            return MailingSelection(DEFAULT_LAST, campaign_id=self.campaign_id)
        return self


@dataclass(frozen=True)
class Selected:
    mailings: list[Mailing]
    # More mailings matched than a comparison shows (MAX_COMPARED): the newest are kept.
    truncated: bool


def select_mailings(selection: MailingSelection) -> Selected:
    """Return the mailings with results that the selection names, newest first."""
    selection = selection.check()
    sent = sent_time()
    stmt = select(Mailing).where(HAS_RESULTS).order_by(sent.desc(), Mailing.id.desc())
    if selection.sent_after is not None:
        stmt = stmt.where(sent >= selection.sent_after)
    if selection.sent_before is not None:
        stmt = stmt.where(sent < selection.sent_before)
    if selection.campaign_id is not None:
        stmt = stmt.where(Mailing.campaign_id == selection.campaign_id)
    limit = selection.last or MAX_COMPARED
    mailings = db.session.scalars(stmt.limit(limit + 1)).all()
    truncated = selection.last is None and len(mailings) > limit
    return Selected(list(mailings[:limit]), truncated)


def sent_at(mailing: Mailing) -> datetime:
    """Return when the mailing went out, by the same rule as sent_time."""
    return mailing.started_at or mailing.frozen_at or mailing.created_at


def per_thousand(count: int, delivered: int) -> float | None:
    """Return count per 1,000 delivered messages, or None when nothing was delivered."""
    share = rate(count, delivered)
    return None if share is None else share * 1000


def mailing_rows(mailings: list[Mailing]) -> list[dict]:
    """Return one flat row of figures and rates per mailing, in the order given.

    Opens and clicks are distinct recipients, `human_*` leaving machines out; actions and
    unsubscribes are forms a person submitted, so they are people only by nature. Rates are
    shares of delivered messages (click-to-open: human clickers over human openers).
    """
    ids = [m.id for m in mailings]
    stats, bounces = stats_for_mailings(ids), bounces_for_mailings(ids)
    rows = []
    for mailing in mailings:
        figures, bounced = stats[mailing.id], bounces[mailing.id]
        delivered = figures["deliveries"].get("sent", 0)
        human_opens, human_clicks = figures["opens"]["human"], figures["clicks"]["human"]
        actions, unsubscribes = figures["actions"]["all"], figures["unsubscribes"]["all"]
        rows.append(
            {
                "mailing_id": mailing.id,
                "name": mailing.name,
                "subject": mailing.subject,
                "campaign_id": mailing.campaign_id,
                "status": mailing.status.value,
                "sent_at": sent_at(mailing),
                "delivered": delivered,
                "failed": figures["deliveries"].get("failed", 0),
                "opens": figures["opens"]["all"],
                "human_opens": human_opens,
                "clicks": figures["clicks"]["all"],
                "human_clicks": human_clicks,
                "actions": actions,
                "unsubscribes": unsubscribes,
                "bounced": bounced["bounced"],
                "complaints": bounced["complaints"],
                "human_open_rate": rate(human_opens, delivered),
                "human_click_rate": rate(human_clicks, delivered),
                "human_click_to_open": rate(human_clicks, human_opens),
                "action_rate": rate(actions, delivered),
                "actions_per_1000": per_thousand(actions, delivered),
                "unsubscribe_rate": rate(unsubscribes, delivered),
                "bounce_rate": rate(bounced["bounced"], delivered),
                "complaint_rate": rate(bounced["complaints"], delivered),
            }
        )
    return rows
