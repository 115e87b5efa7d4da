"""Pick an A/B test's winner and send it to the rest of the audience; stop a harmful variant.

The clock (app/mailings/delivery/ticks.py) runs `trip_breakers` and `decide_due_tests` on
every tick; staff call `pick_winner` from the API or the staff app. All of them lock the test's
row first, so a staff pick racing the clock's pick makes exactly one winner.
"""

from __future__ import annotations

from sqlalchemy import select, update

from app.config import Settings
from app.db import utcnow
from app.errors import Conflict
from app.extensions import db
from app.mailings.abtest.results import AbResults, ab_results, settle_variant_outcomes
from app.mailings.abtest.schemas import AbTestSchema
from app.mailings.delivery.control import pause, record
from app.mailings.delivery.fanout import enqueue_send_batches
from app.mailings.models import (
    AbSelection,
    AbTest,
    Delivery,
    DeliveryStatus,
    Mailing,
    MailingStatus,
    MailingVariant,
)

CLOCK = "clock"
# A test can be decided while its mailing sends, waits paused, or (a 100 % test) has finished.
DECIDABLE = (MailingStatus.SENDING, MailingStatus.PAUSED, MailingStatus.SENT)


class AbTestError(Conflict, ValueError):
    """The A/B test cannot do this now; the message says why."""


def _locked_test(mailing_id: int) -> AbTest | None:
    return db.session.scalar(
        select(AbTest).where(AbTest.mailing_id == mailing_id).with_for_update()
    )


def pick_winner(mailing: Mailing, label: str, settings: Settings, *, actor: str) -> AbResults:
    """Make the variant labelled `label` the winner and send it to the rest; the caller commits.

    Staff may pick at any time once the test has started (they may have seen enough); the
    figures and the confidence at that moment are kept with the decision.
    """
    test = _locked_test(mailing.id)
    if test is None:
        raise AbTestError("This mailing has no A/B test.")
    if test.is_decided:
        raise AbTestError(
            f"The winner was already picked: {test.winner.label if test.winner else '?'}."
        )
    if mailing.status not in DECIDABLE or mailing.started_at is None:
        raise AbTestError(
            f"A winner can be picked once the test has started; this mailing is "
            f"{mailing.status.value}."
        )
    results = ab_results(mailing)
    variant = next((v for v in mailing.variants if v.label == label.strip().upper()), None)
    if variant is None:
        labels = ", ".join(v.label for v in mailing.variants)
        raise AbTestError(f"No variant {label!r}; this test has {labels}.")
    if variant.stopped_at is not None:
        raise AbTestError(f"Variant {variant.label} was stopped: {variant.stopped_reason}")
    _decide(mailing, test, variant, results, settings, decided_by=actor)
    return results


def _decide(
    mailing: Mailing,
    test: AbTest,
    variant: MailingVariant,
    results: AbResults,
    settings: Settings,
    *,
    decided_by: str,
) -> None:
    figures = results.variant(variant.label)
    test.winner_variant_id = variant.id
    test.winner = variant
    test.decided_at = utcnow()
    test.decided_by = decided_by
    test.confidence = figures.probability_best if figures else None
    # Kept in the shape GET …/ab-test answers with, datetimes as ISO strings.
    test.decision = AbTestSchema().dump(results)
    test.note = None
    released = _release_rest(mailing, settings)
    how = "picked automatically" if decided_by == CLOCK else f"picked by {decided_by}"
    confidence = (
        f"{test.confidence:.1%} probability to be best" if test.confidence is not None else ""
    )
    record(
        decided_by if decided_by != CLOCK else "system",
        "ab_winner_picked",
        mailing,
        f"variant {variant.label} {how} ({results.metric_name}; {confidence}); "
        f"sent to the rest: {released} recipients",
    )


def _release_rest(mailing: Mailing, settings: Settings) -> int:
    """Queue the held rest of the audience (sent the winner) and give its batches jobs."""
    released = db.session.execute(
        update(Delivery)
        .where(Delivery.mailing_id == mailing.id, Delivery.status == DeliveryStatus.HELD)
        .values(status=DeliveryStatus.QUEUED)
        .execution_options(synchronize_session=False)
    ).rowcount
    if released and mailing.status == MailingStatus.SENDING:
        # A paused mailing gets its jobs when it is resumed (control.resume queues them).
        batch_nos = db.session.scalars(
            select(Delivery.batch_no)
            .where(Delivery.mailing_id == mailing.id, Delivery.status == DeliveryStatus.QUEUED)
            .distinct()
        ).all()
        enqueue_send_batches(
            settings, mailing, batch_nos, generation=f"w{utcnow():%s%f}", after_commit_of=db.session
        )
    return released


def decide_due_tests(settings: Settings) -> int:
    """Pick the winner of every automatic test whose wait is over; note the manual ones.

    Returns how many winners were picked. An automatic test whose leader is less sure than its
    `min_confidence` waits for staff instead, saying so.
    """
    due = db.session.scalars(
        select(AbTest.mailing_id)
        .join(Mailing, Mailing.id == AbTest.mailing_id)
        .where(
            AbTest.decided_at.is_(None),
            AbTest.decide_at <= utcnow(),
            Mailing.status.in_(DECIDABLE),
        )
    ).all()
    picked = 0
    for mailing_id in due:
        test = _locked_test(mailing_id)
        if test is None or test.is_decided:
            db.session.rollback()
            continue
        mailing = test.mailing
        results = ab_results(mailing)
        note = _reason_to_wait(test, results)
        if note is None:
            winner = next(v for v in mailing.variants if v.label == results.leader)
            _decide(mailing, test, winner, results, settings, decided_by=CLOCK)
            picked += 1
        elif test.note != note:
            test.note = note
        db.session.commit()
    return picked


def _reason_to_wait(test: AbTest, results: AbResults) -> str | None:
    if results.leader is None:
        return "No variant can win: every variant was stopped or none was sent. Pick one by hand."
    if test.selection == AbSelection.MANUAL:
        return (
            f"The test is over: pick the winner. {results.leader} leads with a "
            f"{results.confidence:.1%} probability to be best ({results.metric_name})."
        )
    if test.min_confidence is not None and results.confidence < test.min_confidence:
        return (
            f"{results.leader} leads with a {results.confidence:.1%} probability to be best, "
            f"below the {test.min_confidence:.0%} this test asks for: pick the winner by hand."
        )
    return None


def trip_breakers(settings: Settings) -> int:
    """Stop every variant of a running test whose unsubscribe or complaint rate is past its
    limit; return how many were stopped.

    A stopped variant sends no more: its unsent test rows are held again to get the winner.
    When every variant is stopped the mailing is paused with the reason.
    """
    running = db.session.scalars(
        select(AbTest.mailing_id)
        .join(Mailing, Mailing.id == AbTest.mailing_id)
        .where(
            AbTest.decided_at.is_(None),
            Mailing.status == MailingStatus.SENDING,
            (AbTest.max_unsubscribe_rate.is_not(None)) | (AbTest.max_complaint_rate.is_not(None)),
        )
    ).all()
    stopped = 0
    for mailing_id in running:
        test = _locked_test(mailing_id)
        if test is None or test.is_decided:
            db.session.rollback()
            continue
        mailing = test.mailing
        results = ab_results(mailing)
        for figures in results.variants:
            reason = _breaker_reason(test, figures)
            if reason is None:
                continue
            variant = db.session.get(MailingVariant, figures.id)
            variant.stopped_at = utcnow()
            variant.stopped_reason = reason
            db.session.execute(
                update(Delivery)
                .where(
                    Delivery.variant_id == variant.id,
                    Delivery.status.in_((DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED)),
                )
                .values(status=DeliveryStatus.HELD, variant_id=None, next_attempt_at=None)
                .execution_options(synchronize_session=False)
            )
            record("system", "ab_variant_stopped", mailing, f"variant {variant.label}: {reason}")
            stopped += 1
        if all(v.stopped_at is not None for v in mailing.variants):
            pause(
                mailing,
                actor="system",
                reason="A/B test: every variant passed its unsubscribe or complaint limit. "
                "Cancel it, and send a changed copy.",
            )
        db.session.commit()
    return stopped


def _breaker_reason(test: AbTest, figures) -> str | None:
    if not figures.is_active or figures.sent < test.breaker_min_sent:
        return None
    for count, limit, what in (
        (figures.unsubscribes, test.max_unsubscribe_rate, "unsubscribe"),
        (figures.complaints, test.max_complaint_rate, "complaint"),
    ):
        if limit is not None and count / figures.sent > limit:
            return (
                f"{what} rate {count / figures.sent:.2%} ({count} of {figures.sent} sent) "
                f"passed the limit of {limit:.2%}"
            )
    return None


def settle_tests(settings: Settings) -> int:
    """Store the counts of every test portion that has finished sending; return how many."""
    unsettled = db.session.scalars(
        select(AbTest)
        .join(Mailing, Mailing.id == AbTest.mailing_id)
        .where(AbTest.variant_outcomes.is_(None), Mailing.started_at.is_not(None))
    ).all()
    return sum(settle_variant_outcomes(test) for test in unsettled)
