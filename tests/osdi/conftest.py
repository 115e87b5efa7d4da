"""Fixtures for the OSDI API tests: tokens in the OSDI-API-Token header, sample rows."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.auth.services import create_token
from app.campaigns.models import Action, Letter, LetterStatus
from app.db import utcnow
from app.extensions import db
from app.mailings.models import BounceEvent, BounceKind
from app.tracking.models import MailingRollup
from tests.factories import make_campaign, make_delivery, make_sent_mailing, make_supporter


@pytest.fixture
def osdi_token():
    """Return a function making OSDI-API-Token headers for a fresh token of the given role."""

    def make(role: str = "campaigner") -> dict:
        _, secret = create_token(f"osdi-{role}", role)
        return {"OSDI-API-Token": secret}

    return make


@pytest.fixture
def letters_sent():
    """A letter campaign with two targets and one supporter's action (letters to both)."""
    campaign = make_campaign(
        targets=[
            {"name": "Todd Lyons", "title": "Acting Director", "salutation": "Dear Director",
             "email": "todd.lyons@ice.example", "organisation": "ICE"},
            {"name": "Kristi Noem", "title": "Secretary", "salutation": "Dear Secretary",
             "postal_address": "2707 Martin Luther King Jr Ave SE\nWashington, DC"},
        ]
    )  # fmt: skip
    supporter = make_supporter("writer@example.org")
    action = Action(
        campaign_id=campaign.id,
        supporter_id=supporter.id,
        channel="email",
        letter_subject="Release Cesar and Norelia",
        letter_body="Dear Director, release them.",
    )
    action.letters = [
        Letter(target_id=campaign.targets[0].id, status=LetterStatus.SENT, sent_at=utcnow()),
        Letter(target_id=campaign.targets[1].id, status=LetterStatus.HELD),
    ]
    db.session.add(action)
    db.session.flush()
    return campaign, supporter, action


@pytest.fixture
def mailing_with_figures():
    """A sent mailing: 3 deliveries, one bounced, one complaint; rollups for opens and clicks."""
    mailing = make_sent_mailing()
    deliveries = [
        make_delivery(
            mailing, make_supporter(f"reader{n}@example.org"), sent_ago=timedelta(hours=2)
        )
        for n in range(3)
    ]
    db.session.add_all(
        [
            BounceEvent(kind=BounceKind.HARD, source="smtp", mailing_id=mailing.id,
                        delivery_id=deliveries[0].id),
            BounceEvent(kind=BounceKind.COMPLAINT, source="ses", mailing_id=mailing.id,
                        delivery_id=deliveries[1].id),
            MailingRollup(mailing_id=mailing.id, opens=3, human_opens=2, clicks=2,
                          human_clicks=1, actions=1, unsubscribes=1),
        ]
    )  # fmt: skip
    db.session.flush()
    return mailing
