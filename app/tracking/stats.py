"""Per-mailing counts of what recipients did, people and machines apart, read from rollups.

One definition of each figure, for one mailing (`mailing_stats`, the API) or many at once
(`stats_for_mailings`, the staff dashboard and results list). The event figures are the
counters app/tracking/rollups.py keeps as events are recorded — "unique" means distinct
recipients (deliveries with the first-time stamp set), counted by delivery, not supporter, so
erasing a supporter changes nothing. Delivery outcomes of a finished mailing are the counts
stored once its deliveries can no longer change (mailings.outcome_counts, see
app/mailings/delivery/outcomes.py); while it sends they are a GROUP BY on deliveries (mailing,
status) from the index ix_deliveries_mailing_status_batch — a delivery's status moves through
several steps of the send pipeline, and a counter there would be updated at every one.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import func, select

from app.extensions import db
from app.mailings.delivery.outcomes import count_by_status
from app.mailings.models import BounceEvent, BounceKind, DeliveryStatus, Mailing
from app.tracking.models import MailingRollup

# (figure, mailing_rollups counter for all, for people only). Actions and unsubscribes are
# forms a person submits: they have no machine share.
FIGURES = (
    ("opens", "opens", "human_opens"),
    ("clicks", "clicks", "human_clicks"),
    ("unsubscribes", "unsubscribes", "unsubscribes"),
    ("actions", "actions", "actions"),
)


def mailing_stats(mailing_id: int) -> dict:
    """Return unique opens, clicks, unsubscribes and actions (all and human) and deliveries."""
    return stats_for_mailings([mailing_id])[mailing_id]


def stats_for_mailings(mailing_ids: Collection[int]) -> dict[int, dict]:
    """Return mailing_stats for each of the mailings: one query for rollups, one for deliveries."""
    ids = list(mailing_ids)
    stats = {mailing_id: _empty_stats() for mailing_id in ids}
    if not ids:
        return stats
    for rollup in db.session.scalars(
        select(MailingRollup)
        .where(MailingRollup.mailing_id.in_(ids))
        .execution_options(populate_existing=True)
    ):
        stats[rollup.mailing_id].update(figures_of(rollup))
    settled = dict(
        db.session.execute(
            select(Mailing.id, Mailing.outcome_counts).where(
                Mailing.id.in_(ids), Mailing.outcome_counts.is_not(None)
            )
        ).all()
    )
    counted = count_by_status([m for m in ids if m not in settled])
    for mailing_id in ids:
        stats[mailing_id]["deliveries"] = dict(settled.get(mailing_id) or counted[mailing_id])
    return stats


def figures_of(rollup: MailingRollup) -> dict[str, dict[str, int]]:
    """Return {"opens": {"all": n, "human": n}, …} from a mailing's rollup row."""
    return {
        name: {"all": getattr(rollup, every), "human": getattr(rollup, people)}
        for name, every, people in FIGURES
    }


def bounces_for_mailings(mailing_ids: Collection[int]) -> dict[int, dict[str, int]]:
    """Return {mailing_id: {"bounced": n, "complaints": n}}, counting recipients, not reports.

    A mail system may report one recipient's bounce several times (SMTP, then a DSN); the
    recipient is what staff ask about, so reports are counted by delivery. Bounce reports are
    a small share of deliveries, so they are counted, not rolled up.
    """
    ids = list(mailing_ids)
    counts = {mailing_id: {"bounced": 0, "complaints": 0} for mailing_id in ids}
    if not ids:
        return counts
    recipients = func.count(BounceEvent.delivery_id.distinct())
    rows = db.session.execute(
        select(
            BounceEvent.mailing_id,
            recipients.filter(BounceEvent.kind.in_((BounceKind.HARD, BounceKind.SOFT))),
            recipients.filter(BounceEvent.kind == BounceKind.COMPLAINT),
        )
        .where(BounceEvent.mailing_id.in_(ids))
        .group_by(BounceEvent.mailing_id)
    )
    for mailing_id, bounced, complaints in rows:
        counts[mailing_id] = {"bounced": bounced, "complaints": complaints}
    return counts


def _empty_stats() -> dict:
    stats: dict = {name: {"all": 0, "human": 0} for name, _, _ in FIGURES}
    stats["deliveries"] = dict.fromkeys((s.value for s in DeliveryStatus), 0)
    return stats
