"""Demo campaigns from the seed Urgent Actions, and the `clarion campaigns` commands."""

from __future__ import annotations

import csv
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from app.campaigns.models import Campaign
from app.campaigns.services import record_action
from app.demo.campaigns import DEMO_MAILING_NAME, LINKED_SLUG, load_demo_campaigns
from app.extensions import db
from app.mailings.models import Mailing
from tests.factories import make_campaign, make_supporter


def test_demo_campaigns_are_idempotent_and_link_the_demo_mailing(db_session):
    mailing = Mailing(name=DEMO_MAILING_NAME, subject="Act")
    db_session.add(mailing)
    assert load_demo_campaigns(db_session) == 3
    assert load_demo_campaigns(db_session) == 0
    assert db_session.scalar(select(func.count()).select_from(Campaign)) == 3
    linked = db_session.get(Campaign, mailing.campaign_id)
    assert linked.slug == LINKED_SLUG
    assert linked.targets[0].salutation == "Dear Acting Director Lyons"
    expulsions = db_session.scalar(select(Campaign).where(Campaign.reference == "UA 034/25"))
    assert expulsions.targets[0].email is None
    assert "2707 Martin Luther King" in expulsions.targets[0].postal_address
    # Open four weeks from loading, until the end of that day in Washington, DC.
    local = expulsions.deadline.astimezone(ZoneInfo("America/New_York"))
    assert local.date() == date.today() + timedelta(days=28)
    assert (local.hour, local.minute, local.second) == (23, 59, 59)
    assert all(c.is_open() for c in db_session.scalars(select(Campaign)))


def test_cli_lists_campaigns_and_exports_letters(app, tmp_path):
    campaign = make_campaign()
    record_action(campaign, make_supporter(), channel="public")
    db.session.commit()
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["campaigns", "list"])
    assert listed.exit_code == 0, listed.output
    assert "release-the-parents" in listed.output and "1 actions" in listed.output

    out = tmp_path / "letters.csv"
    exported = runner.invoke(args=["campaigns", "letters", str(campaign.id), "-o", str(out)])
    assert exported.exit_code == 0, exported.output
    with out.open(encoding="utf-8") as handle:
        [row] = list(csv.DictReader(handle))
    assert row["target_name"] == "Todd Lyons" and row["status"] == "queued"

    missing = runner.invoke(args=["campaigns", "letters", "9999"])
    assert missing.exit_code == 1 and "No campaign with id 9999" in missing.output
