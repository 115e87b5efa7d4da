"""The mailings domain's clock ticks: start due mailings, hold closed campaigns' mailings, requeue
stalled batches, finish complete mailings. The database is the source of truth (see fanout.py).

They live here, above launch and fanout, because they use both and launch uses fanout.
"""

from __future__ import annotations

from sqlalchemy import select

from app.config import Settings
from app.db import utcnow
from app.extensions import db
from app.mailings.abtest.decision import decide_due_tests, settle_tests, trip_breakers
from app.mailings.delivery.fanout import requeue_stalled_batches
from app.mailings.delivery.launch import hold_unless_campaign_open, start_mailing
from app.mailings.delivery.sending import finish_if_complete
from app.mailings.models import Mailing, MailingStatus


def start_due_mailings(settings: Settings) -> int:
    """Start scheduled mailings whose time has come (Redis may have lost the scheduled job)."""
    due = db.session.scalars(
        select(Mailing.id).where(
            Mailing.status == MailingStatus.SCHEDULED, Mailing.scheduled_at <= utcnow()
        )
    ).all()
    return sum(start_mailing(mailing_id, settings) for mailing_id in due)


def requeue_stalled_mailings(settings: Settings) -> int:
    """Enqueue jobs for the stalled batches of every sending mailing."""
    mailings = db.session.scalars(
        select(Mailing).where(Mailing.status == MailingStatus.SENDING)
    ).all()
    return sum(requeue_stalled_batches(settings, mailing) for mailing in mailings)


def finish_completed_mailings(settings: Settings) -> int:
    """Mark sending mailings with no rows left to send as sent."""
    ids = db.session.scalars(
        select(Mailing.id).where(Mailing.status == MailingStatus.SENDING)
    ).all()
    return sum(finish_if_complete(mailing_id) for mailing_id in ids)


def hold_mailings_of_closed_campaigns(settings: Settings) -> int:
    """Pause scheduled mailings whose campaign stopped being open, with the reason.

    Runs before start_due_mailings, due or not, so a mailing's status says why as soon as its
    campaign is closed, back to draft or past its deadline.
    """
    scheduled = db.session.scalars(
        select(Mailing.id).where(
            Mailing.status == MailingStatus.SCHEDULED, Mailing.campaign_id.is_not(None)
        )
    ).all()
    return sum(hold_unless_campaign_open(mailing_id) for mailing_id in scheduled)


def sweep(settings: Settings) -> dict:
    """Run mailings' own clock ticks once, in order; app/clock.py runs every domain's ticks."""
    outcome = {}
    for name, tick in MAILING_TICKS.items():
        outcome[name] = tick(settings)
        db.session.commit()
    return outcome


# The mailings domain's periodic work, in the order it must run (app/clock.py runs it).
MAILING_TICKS = {
    "held": hold_mailings_of_closed_campaigns,
    "started": start_due_mailings,
    # A/B tests: stop harmful variants first, so a stopped one cannot win the same tick.
    "ab_variants_stopped": trip_breakers,
    "ab_winners_picked": decide_due_tests,
    "ab_settled": settle_tests,
    "requeued": requeue_stalled_mailings,
    "finished": finish_completed_mailings,
}
