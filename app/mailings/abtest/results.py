"""An A/B test's figures per variant, from the test portion's deliveries, and how sure they are.

Unique counts only: a recipient counts once for opening, clicking or acting however often they
did, because the counts are the variant's rollup (ab_variant_rollups), moved with the
first-time stamps on their delivery row by app/tracking/rollups.py, and the winner is judged
on people alone (human opens and clicks; an action is always a person's). Recipients and sent
messages per variant are counted from the test portion's rows while it sends, then stored once
(settle_variant_outcomes), so a finished test's report counts no deliveries.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlalchemy import exists, func, select

from app.db import utcnow
from app.extensions import db
from app.mailings.abtest.statistics import probabilities_to_be_best, two_proportion_test
from app.mailings.models import (
    VARIANT_COUNTERS,
    AbMetric,
    AbTest,
    AbVariantRollup,
    Delivery,
    DeliveryStatus,
    Mailing,
)

# The delivery stamp each metric counts.
METRIC_STAMPS = {
    AbMetric.OPENS: "human_opens",
    AbMetric.CLICKS: "human_clicks",
    AbMetric.ACTIONS: "actions",
}
METRIC_NAMES = {
    AbMetric.OPENS: "people who opened",
    AbMetric.CLICKS: "people who clicked",
    AbMetric.ACTIONS: "people who acted",
}


@dataclass
class VariantFigures:
    id: int
    label: str
    subject: str
    from_name: str | None
    recipients: int = 0
    sent: int = 0
    opens: int = 0
    human_opens: int = 0
    clicks: int = 0
    human_clicks: int = 0
    actions: int = 0
    unsubscribes: int = 0
    complaints: int = 0
    hard_bounces: int = 0
    stopped_at: datetime | None = None
    stopped_reason: str | None = None
    # Filled in by ab_results: successes / sent for the test's metric, and P(best).
    successes: int = 0
    rate: float | None = None
    probability_best: float | None = None

    @property
    def is_active(self) -> bool:
        return self.stopped_at is None

    def rate_of(self, count: int) -> float | None:
        return count / self.sent if self.sent else None


@dataclass
class AbResults:
    mailing_id: int
    metric: str
    metric_name: str
    selection: str
    test_fraction: float
    wait_minutes: int
    test_recipients: int
    decide_at: datetime | None
    state: str  # draft, testing, waiting_for_pick, decided
    note: str | None
    variants: list[VariantFigures] = field(default_factory=list)
    leader: str | None = None
    confidence: float | None = None  # the leader's probability to be best
    p_value: float | None = None  # leader against runner-up, two-proportion z-test
    winner: str | None = None
    decided_at: datetime | None = None
    decided_by: str | None = None
    decided_confidence: float | None = None
    rest_recipients: int = 0  # the audience outside the test portion
    settings: dict = field(default_factory=dict)

    def variant(self, label: str) -> VariantFigures | None:
        return next((v for v in self.variants if v.label == label), None)

    def as_dict(self) -> dict:
        return asdict(self)


def _counts_by_variant(test: AbTest) -> dict[int, dict]:
    """Each variant's unique counts (its rollup) and its recipients and sent messages."""
    counts: dict[int, dict] = {}
    for rollup in db.session.scalars(
        select(AbVariantRollup)
        .where(AbVariantRollup.mailing_id == test.mailing_id)
        .execution_options(populate_existing=True)
    ):
        counts[rollup.variant_id] = {name: getattr(rollup, name) for name in VARIANT_COUNTERS}
    outcomes = test.variant_outcomes or count_variant_outcomes(test.mailing_id)
    for variant_id, figures in outcomes.items():
        counts.setdefault(int(variant_id), {}).update(figures)
    return counts


def count_variant_outcomes(mailing_id: int) -> dict[str, dict]:
    """Count the test portion's deliveries per variant: recipients and sent."""
    rows = db.session.execute(
        select(
            Delivery.variant_id,
            func.count(),
            func.count().filter(Delivery.status == DeliveryStatus.SENT),
        )
        .where(Delivery.mailing_id == mailing_id, Delivery.variant_id.is_not(None))
        .group_by(Delivery.variant_id)
    )
    return {str(variant_id): {"recipients": n, "sent": sent} for variant_id, n, sent in rows}


def settle_variant_outcomes(test: AbTest) -> bool:
    """Store the test portion's counts once none of its deliveries can change; no commit.

    The test portion is batches 0 … test_batch_count - 1, so "is any still to send" is a look
    at the (mailing, status, batch) index, not at the deliveries. Held rows there are not the
    test's any more (a stopped variant's, waiting for the winner).
    """
    if test.variant_outcomes is not None or test.mailing.started_at is None:
        return False
    still_sending = exists().where(
        Delivery.mailing_id == test.mailing_id,
        Delivery.status.in_(
            (DeliveryStatus.QUEUED, DeliveryStatus.SENDING, DeliveryStatus.DEFERRED)
        ),
        Delivery.batch_no < test.test_batch_count,
    )
    if db.session.scalar(select(still_sending)):
        return False
    test.variant_outcomes = count_variant_outcomes(test.mailing_id)
    return True


def _state(test: AbTest, mailing: Mailing) -> str:
    if test.is_decided:
        return "decided"
    if mailing.started_at is None:
        return "draft" if mailing.frozen_at is None else "scheduled"
    if test.decide_at is not None and test.decide_at <= utcnow():
        return "waiting_for_pick"
    return "testing"


def ab_results(mailing: Mailing) -> AbResults | None:
    """The A/B test's figures now, with each variant's probability to be best (None: no test)."""
    test = mailing.ab_test
    if test is None:
        return None
    metric = AbMetric(test.metric)
    results = AbResults(
        mailing_id=mailing.id,
        metric=metric.value,
        metric_name=METRIC_NAMES[metric],
        selection=test.selection,
        test_fraction=test.test_fraction,
        wait_minutes=test.wait_minutes,
        test_recipients=test.test_recipients,
        decide_at=test.decide_at,
        state=_state(test, mailing),
        note=test.note,
        winner=test.winner.label if test.winner else None,
        decided_at=test.decided_at,
        decided_by=test.decided_by,
        decided_confidence=test.confidence,
        rest_recipients=max(mailing.total_recipients - test.test_recipients, 0)
        if mailing.started_at
        else 0,
        settings={
            "min_confidence": test.min_confidence,
            "max_unsubscribe_rate": test.max_unsubscribe_rate,
            "max_complaint_rate": test.max_complaint_rate,
            "breaker_min_sent": test.breaker_min_sent,
        },
    )
    counts = _counts_by_variant(test) if mailing.started_at else {}
    for variant in mailing.variants:
        figures = VariantFigures(
            id=variant.id,
            label=variant.label,
            subject=variant.subject or mailing.subject,
            from_name=variant.from_name or mailing.from_name,
            stopped_at=variant.stopped_at,
            stopped_reason=variant.stopped_reason,
        )
        for name, value in counts.get(variant.id, {}).items():
            if name != "variant_id":
                setattr(figures, name, value)
        figures.successes = getattr(figures, METRIC_STAMPS[metric])
        figures.rate = figures.rate_of(figures.successes)
        results.variants.append(figures)
    _judge(results)
    return results


def _judge(results: AbResults) -> None:
    """Give each active variant its probability to be best, and name the leader."""
    active = [v for v in results.variants if v.is_active]
    if not active or not any(v.sent for v in active):
        return
    probabilities = probabilities_to_be_best(
        tuple(v.successes for v in active), tuple(v.sent for v in active)
    )
    for variant, probability in zip(active, probabilities, strict=True):
        variant.probability_best = probability
    # Highest probability; a tie goes to the earlier variant (A is the control).
    ranked = sorted(active, key=lambda v: (-v.probability_best, v.label))
    leader = ranked[0]
    results.leader = leader.label
    results.confidence = leader.probability_best
    if len(ranked) > 1:
        runner_up = ranked[1]
        comparison = two_proportion_test(
            leader.successes, leader.sent, runner_up.successes, runner_up.sent
        )
        results.p_value = comparison.p_value if comparison else None
