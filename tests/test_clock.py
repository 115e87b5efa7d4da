"""The clock: every domain's periodic ticks from one table, each in its own transaction."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from app.campaigns.models import Campaign, CampaignStatus
from app.clock import TICKS, run_ticks
from app.db import utcnow
from app.extensions import db
from app.mailings.delivery.ticks import sweep
from tests.campaigns.test_letters import act
from tests.factories import make_campaign
from tests.smtp_sink import free_port


def test_the_clock_runs_every_domains_ticks_and_mailings_sweep_only_its_own(settings, redis_conn):
    assert list(TICKS) == [
        "events",
        "held",
        "started",
        "ab_variants_stopped",
        "ab_winners_picked",
        "ab_settled",
        "requeued",
        "finished",
        "closed",
        "letters",
        "confirmations",
        "pending",
        "uploads",
    ]
    assert run_ticks(settings) == dict.fromkeys(TICKS, 0)
    assert sweep(settings) == {
        "held": 0,
        "started": 0,
        "ab_variants_stopped": 0,
        "ab_winners_picked": 0,
        "ab_settled": 0,
        "requeued": 0,
        "finished": 0,
    }


def test_one_failing_tick_does_not_stop_the_others(settings):
    # A due letter makes the letters tick ask Redis whether its job is live; Redis is down.
    open_one = make_campaign(slug="still-open")
    act(open_one)
    expired = make_campaign(slug="expired", deadline=utcnow() - timedelta(minutes=1))
    db.session.commit()
    down = replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    outcome = run_ticks(down)
    assert outcome["letters"] == "error"
    assert outcome["closed"] == 1 and outcome["events"] == 0
    db.session.expire_all()
    assert db.session.get(Campaign, expired.id).status == CampaignStatus.CLOSED
