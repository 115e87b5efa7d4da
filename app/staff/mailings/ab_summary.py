"""An A/B test in plain words for the staff pages: how the audience splits, who picks, who won.

The figures are app/mailings/abtest/results.py's; this only names them for people, once, for
the mailing page, the pre-send check and the results page alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.mailings.abtest.assignment import is_ab_tested, test_portion_size
from app.mailings.abtest.decision import CLOCK, DECIDABLE
from app.mailings.abtest.results import METRIC_NAMES, AbResults, ab_results
from app.mailings.models import AbMetric, AbSelection, Mailing

STAFF_ACTOR_PREFIX = "staff:"  # how app/staff/access.py actor() names a staff user


def in_words(labels: list[str]) -> str:
    """["A", "B", "C"] -> "A, B and C"."""
    if len(labels) < 2:
        return "".join(labels)
    return f"{', '.join(labels[:-1])} and {labels[-1]}"


def wait_in_words(minutes: int) -> str:
    """The wait in the largest whole unit: 1440 -> "1 day", 240 -> "4 hours", 90 -> "90 minutes"."""
    count, unit = minutes, "minute"
    for size, name in ((24 * 60, "day"), (60, "hour")):
        if minutes and minutes % size == 0:
            count, unit = minutes // size, name
            break
    return f"{count:,} {unit}{'' if count == 1 else 's'}"


def percent_in_words(fraction: float) -> str:
    return f"{round(fraction * 100, 2):g} %"


def decided_how(decided_by: str | None) -> str:
    if decided_by == CLOCK:
        return "picked automatically"
    return f"picked by {(decided_by or 'staff').removeprefix(STAFF_ACTOR_PREFIX)}"


@dataclass
class AbSummary:
    results: AbResults
    labels: str  # "A and B"
    share: str  # "20 %"
    wait: str  # "4 hours"
    automatic: bool
    decided_how: str | None
    # Variants staff may send to the rest now (a pick is possible, the variant not stopped).
    pickable: list[str]


def ab_summary(mailing: Mailing) -> AbSummary | None:
    """The mailing's A/B test, worded (None without one)."""
    results = ab_results(mailing) if is_ab_tested(mailing) else None
    if results is None:
        return None
    can_pick = (
        results.winner is None and mailing.started_at is not None and mailing.status in DECIDABLE
    )
    return AbSummary(
        results=results,
        labels=in_words([v.label for v in results.variants]),
        share=percent_in_words(results.test_fraction),
        wait=wait_in_words(results.wait_minutes),
        automatic=results.selection == AbSelection.AUTO.value,
        decided_how=decided_how(results.decided_by) if results.winner else None,
        pickable=[v.label for v in results.variants if v.is_active] if can_pick else [],
    )


@dataclass(frozen=True)
class AudienceSplit:
    """How sending now would split the audience (for the pre-send check)."""

    labels: str
    share: str
    wait: str
    metric_name: str
    automatic: bool
    test_recipients: int
    per_variant: int
    uneven: bool  # some variants get one more than per_variant
    rest: int


def audience_split(mailing: Mailing, recipients: int) -> AudienceSplit | None:
    if not is_ab_tested(mailing):
        return None
    test = mailing.ab_test
    variants = len(mailing.variants)
    in_test = test_portion_size(recipients, test.test_fraction, variants) if recipients else 0
    return AudienceSplit(
        labels=in_words([v.label for v in mailing.variants]),
        share=percent_in_words(test.test_fraction),
        wait=wait_in_words(test.wait_minutes),
        metric_name=METRIC_NAMES[AbMetric(test.metric)],
        automatic=test.selection == AbSelection.AUTO.value,
        test_recipients=in_test,
        per_variant=in_test // variants,
        uneven=in_test % variants != 0,
        rest=recipients - in_test,
    )
