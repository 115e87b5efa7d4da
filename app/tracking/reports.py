"""One mailing's report: headline figures and rates, over time and per link.

Every figure is read from what app/tracking/rollups.py keeps as events arrive — the mailing's
rollup row, its hourly rollups, its link rollups — plus the stored delivery outcomes
(app/tracking/stats.py) and bounce reports counted by recipient: a fixed handful of small
queries whatever the mailing's size. The figures by list, tag or segment, which read the
deliveries themselves, are app/tracking/breakdowns.py.

Counts are recipients (deliveries), never supporters, so erasing a supporter changes none of
the headline, time or link figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from app.extensions import db
from app.mailings.abtest.results import AbResults, ab_results
from app.mailings.models import (
    VARIANT_LABELS,
    BounceEvent,
    BounceKind,
    DeliveryStatus,
    Mailing,
    MailingLink,
    MailingVariant,
)
from app.tracking.models import LinkRollup, MailingHourlyRollup
from app.tracking.rollups import hour_of
from app.tracking.stats import mailing_stats

# After three days a mailing's activity is a tail: hourly bars would be mostly empty.
HOURLY_FOR = timedelta(hours=72)


def rate(count: int, whole: int) -> float | None:
    """Return count as a share of whole (delivered messages, or openers), None when whole is 0.

    The one definition of a rate: the staff pages, the API and the CSVs all use it.
    """
    return count / whole if whole else None


@dataclass(frozen=True)
class Pair:
    """A figure counted twice: every recipient, and only those seen to be people."""

    all: int | float | None
    human: int | float | None


@dataclass(frozen=True)
class Rates:
    """Shares of delivered messages, except click-to-open (a share of openers)."""

    open_rate: Pair
    click_rate: Pair
    click_to_open: Pair
    action_rate: float | None
    unsubscribe_rate: float | None
    bounce_rate: float | None
    complaint_rate: float | None


@dataclass(frozen=True)
class Bucket:
    """Recipients doing each thing for the first time within [start, start + unit)."""

    start: datetime
    unit: str  # "hour" or "day"
    opens: int
    human_opens: int
    clicks: int
    human_clicks: int
    actions: int
    unsubscribes: int


@dataclass(frozen=True)
class LinkFigures:
    position: int
    url: str | None
    is_honeypot: bool
    clicks: int  # click rows: each recipient once as a person and once as a machine at most
    unique: int  # recipients who clicked it
    unique_human: int  # recipients who clicked it as people
    human_rate: float | None  # unique_human over delivered
    variant: str | None = None  # the A/B variant whose own body holds it (None: every one)


@dataclass(frozen=True)
class MailingReport:
    mailing: Mailing
    recipients: int
    sent: int
    failed: int
    deferred: int
    queued: int
    suppressed: int
    cancelled: int
    bounced: int
    hard_bounces: int
    soft_bounces: int
    complaints: int
    opens: Pair
    clicks: Pair
    actions: Pair
    unsubscribes: Pair
    rates: Rates
    timeline: list[Bucket]
    links: list[LinkFigures]
    ab_test: AbResults | None  # per variant, when the mailing is A/B tested

    @property
    def delivered(self) -> int:
        return self.sent


def mailing_report(mailing_id: int) -> MailingReport | None:
    """Return the mailing's report, or None when there is no such mailing."""
    mailing = db.session.get(Mailing, mailing_id)
    if mailing is None:
        return None
    stats = mailing_stats(mailing_id)
    deliveries = stats["deliveries"]
    bounces = bounce_counts(mailing_id)
    delivered = deliveries[DeliveryStatus.SENT.value]
    pairs = {name: Pair(stats[name]["all"], stats[name]["human"]) for name in FIGURE_NAMES}
    rates = rates_of(stats, bounces)
    return MailingReport(
        mailing=mailing,
        recipients=deliveries["total"],
        sent=delivered,
        failed=deliveries[DeliveryStatus.FAILED.value],
        deferred=deliveries[DeliveryStatus.DEFERRED.value],
        # Held rows (an A/B test's rest of the audience) wait to be sent, as queued ones do.
        queued=deliveries[DeliveryStatus.QUEUED.value]
        + deliveries[DeliveryStatus.SENDING.value]
        + deliveries[DeliveryStatus.HELD.value],
        suppressed=deliveries[DeliveryStatus.SUPPRESSED.value],
        cancelled=deliveries[DeliveryStatus.CANCELLED.value],
        bounced=bounces["bounced"],
        hard_bounces=bounces["hard"],
        soft_bounces=bounces["soft"],
        complaints=bounces["complaints"],
        rates=rates,
        timeline=timeline(mailing),
        links=link_figures(mailing_id, delivered),
        ab_test=ab_results(mailing),
        **pairs,
    )


FIGURE_NAMES = ("opens", "clicks", "actions", "unsubscribes")


def rates_of(stats: dict, bounces: dict) -> Rates:
    """The rates analysts use, from mailing_stats and bounce_counts: the one definition the
    report and GET …/stats share."""
    delivered = stats["deliveries"][DeliveryStatus.SENT.value]
    opens, clicks = stats["opens"], stats["clicks"]
    return Rates(
        open_rate=Pair(rate(opens["all"], delivered), rate(opens["human"], delivered)),
        click_rate=Pair(rate(clicks["all"], delivered), rate(clicks["human"], delivered)),
        click_to_open=Pair(
            rate(clicks["all"], opens["all"]), rate(clicks["human"], opens["human"])
        ),
        action_rate=rate(stats["actions"]["all"], delivered),
        unsubscribe_rate=rate(stats["unsubscribes"]["all"], delivered),
        bounce_rate=rate(bounces["bounced"], delivered),
        complaint_rate=rate(bounces["complaints"], delivered),
    )


def bounce_counts(mailing_id: int) -> dict[str, int]:
    """Return recipients bounced (hard, soft, either) and complaining, from bounce reports.

    By recipient: a mail system may report one bounce several times. A recipient with a soft
    and then a hard bounce is in both kinds and once in "bounced".
    """
    recipients = func.count(BounceEvent.delivery_id.distinct())
    bounced, hard, soft, complaints = db.session.execute(
        select(
            recipients.filter(BounceEvent.kind.in_((BounceKind.HARD, BounceKind.SOFT))),
            recipients.filter(BounceEvent.kind == BounceKind.HARD),
            recipients.filter(BounceEvent.kind == BounceKind.SOFT),
            recipients.filter(BounceEvent.kind == BounceKind.COMPLAINT),
        ).where(BounceEvent.mailing_id == mailing_id)
    ).one()
    return {"bounced": bounced, "hard": hard, "soft": soft, "complaints": complaints}


def timeline(mailing: Mailing) -> list[Bucket]:
    """Return first-time counts per hour for 72 hours from the start of sending, then per day.

    Buckets run without gaps from the hour sending started (or the first activity, if that
    came earlier) to the last activity; days are counted from the end of the hourly part, so
    every bucket is whole. The buckets add up to the mailing's unique counts.
    """
    rows = db.session.scalars(
        select(MailingHourlyRollup)
        .where(MailingHourlyRollup.mailing_id == mailing.id)
        .order_by(MailingHourlyRollup.hour)
    ).all()
    rows = [r for r in rows if any(getattr(r, name) for name in _BUCKET_COUNTERS)]
    if not rows:
        return []
    first = rows[0].hour
    start = min(hour_of(mailing.started_at), first) if mailing.started_at else first
    daily_from = start + HOURLY_FOR
    last = rows[-1].hour
    starts: list[tuple[datetime, str]] = []
    moment = start
    while moment <= last:
        hourly = moment < daily_from
        starts.append((moment, "hour" if hourly else "day"))
        moment += timedelta(hours=1) if hourly else timedelta(days=1)
    totals = [dict.fromkeys(_BUCKET_COUNTERS, 0) for _ in starts]
    for row in rows:
        if row.hour < daily_from:
            n = int((row.hour - start) / timedelta(hours=1))
        else:
            n = int(HOURLY_FOR / timedelta(hours=1)) + (row.hour - daily_from).days
        for name in _BUCKET_COUNTERS:
            totals[n][name] += getattr(row, name)
    return [
        Bucket(start=moment, unit=unit, **counts)
        for (moment, unit), counts in zip(starts, totals, strict=True)
    ]


_BUCKET_COUNTERS = ("opens", "human_opens", "clicks", "human_clicks", "actions", "unsubscribes")


def link_figures(mailing_id: int, delivered: int) -> list[LinkFigures]:
    """Return each of the mailing's links with its click rows and unique clickers."""
    counts = {
        r.link_position: r
        for r in db.session.scalars(select(LinkRollup).where(LinkRollup.mailing_id == mailing_id))
    }
    links = {
        link.position: link
        for link in db.session.scalars(
            select(MailingLink).where(MailingLink.mailing_id == mailing_id)
        )
    }
    labels = dict(
        db.session.execute(
            select(MailingVariant.id, MailingVariant.position).where(
                MailingVariant.mailing_id == mailing_id
            )
        ).all()
    )
    labels = {variant_id: VARIANT_LABELS[position] for variant_id, position in labels.items()}
    figures = []
    for position in sorted(set(links) | set(counts)):
        link, rollup = links.get(position), counts.get(position)
        unique_human = rollup.human_clicks if rollup else 0
        figures.append(
            LinkFigures(
                position=position,
                url=link.url if link else None,
                is_honeypot=bool(link and link.is_honeypot),
                clicks=rollup.click_events if rollup else 0,
                unique=rollup.clicks if rollup else 0,
                unique_human=unique_human,
                human_rate=rate(unique_human, delivered),
                variant=labels.get(link.variant_id) if link else None,
            )
        )
    return figures
