"""The clock: every domain's periodic work, run every CLOCK_INTERVAL_SECONDS by `clarion worker`.

The database is the source of truth and Redis may lose jobs, so these ticks look at rows and
(re)enqueue what is due. They are cross-domain, so they live here, above every domain; each
domain contributes plain functions taking the settings and returning a count.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from app.campaigns.confirmations import purge_expired_pending, redrive_unsent_confirmations
from app.campaigns.letters import redrive_due_letters
from app.campaigns.services import close_expired
from app.config import Settings
from app.extensions import db
from app.mailings.delivery.ticks import MAILING_TICKS
from app.supporters.uploads import remove_expired_uploads
from app.tracking.buffer import drain_events

log = logging.getLogger(__name__)

# name -> tick, run in this order. The names are the keys of the outcome dict.
TICKS: dict[str, Callable[[Settings], int]] = {
    # Opens and clicks buffered in Redis are counted first, so an A/B test decided in this
    # tick judges every event that arrived before it.
    "events": drain_events,
    **MAILING_TICKS,  # held, started, A/B breakers and winners, requeued, finished
    "closed": lambda settings: close_expired(),
    "letters": redrive_due_letters,
    "confirmations": redrive_unsent_confirmations,  # confirmation mails whose job Redis lost
    "pending": purge_expired_pending,  # held actions whose confirmation link expired
    "uploads": remove_expired_uploads,  # stored CSV files no import needs any more
}


def run_ticks(settings: Settings) -> dict[str, int | str]:
    """Run every tick once, each in its own transaction; return what each did.

    One tick failing (Redis down, a bad row) is logged and rolled back, and reads as "error" in
    the outcome; the other ticks still run.
    """
    outcome: dict[str, int | str] = {}
    for name, tick in TICKS.items():
        try:
            outcome[name] = tick(settings)
            db.session.commit()
        except Exception:
            db.session.rollback()
            log.exception("clock: tick %r failed", name)
            outcome[name] = "error"
    return outcome
