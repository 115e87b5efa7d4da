"""Fixtures for campaign tests: an open letter campaign, a sent mailing that links to it."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.campaigns.guards import started_stamp
from app.campaigns.models import (
    Campaign,
    CampaignKind,
    CampaignStatus,
    CampaignTarget,
    PendingAction,
)
from app.db import utcnow
from app.extensions import db, limiter
from app.links.tokens import ConfirmTokens, Purpose, TokenService
from app.mailings.models import Delivery, DeliveryStatus, Mailing, MailingStatus
from app.supporters.services import upsert_supporter

LETTER = (
    "{salutation},\n\nI urge you to release Cesar and Norelia to their three children.\n\n"
    "Yours sincerely,\n{supporter_name}\n{supporter_town}"
)


def make_campaign(
    *,
    slug="release-the-parents",
    kind=CampaignKind.LETTER,
    targets=None,
    deadline=None,
    status=CampaignStatus.OPEN,
    **fields,
) -> Campaign:
    if targets is None:
        targets = [
            {
                "name": "Todd Lyons",
                "title": "Acting Director",
                "organisation": "Immigration and Customs Enforcement",
                "salutation": "Dear Acting Director Lyons",
                "email": "todd.lyons@ice.example",
                "postal_address": "500 12th St SW\nWashington, DC 20536, USA",
            }
        ]
    values = {
        "title": "Reunite a family seeking safety",
        "reference": "UA 000/25",
        "summary": "<p>Parents were <strong>detained</strong>.</p><script>alert(1)</script>",
        "timezone": "America/New_York",
        "thank_you": "<p>Thank you for writing.</p>",
        "letter_subject": "Release Cesar and Norelia",
        "letter_body": LETTER,
        **fields,
    }
    campaign = Campaign(
        slug=slug,
        kind=kind,
        deadline=deadline or utcnow() + timedelta(days=10),
        status=status,
        targets=[CampaignTarget(position=n, **t) for n, t in enumerate(targets)],
        **values,
    )
    db.session.add(campaign)
    db.session.flush()
    return campaign


def make_supporter(email="jane@example.org", **data):
    data = {
        "first_name": "Jane",
        "last_name": "Doe",
        "custom_fields": {"town": "Springfield"},
        **data,
    }
    supporter, _ = upsert_supporter({"email": email, **data}, actor="test")
    return supporter


@dataclass
class Recipient:
    campaign_id: int
    mailing_id: int
    supporter_id: int
    token: str

    @property
    def path(self) -> str:
        return f"/a/{self.token}"


def make_recipient(settings, campaign: Campaign, supporter=None) -> Recipient:
    supporter = supporter or make_supporter()
    mailing = Mailing(
        name="28 children — act now",
        subject="Act",
        status=MailingStatus.SENT,
        campaign_id=campaign.id,
    )
    db.session.add(mailing)
    db.session.flush()
    db.session.add(
        Delivery(
            mailing_id=mailing.id,
            supporter_id=supporter.id,
            batch_no=0,
            status=DeliveryStatus.SENT,
            sent_at=utcnow() - timedelta(hours=1),
        )
    )
    db.session.flush()
    token = TokenService(settings.secret_keys).dumps(Purpose.ACTION, mailing.id, supporter.id)
    # Commit (a savepoint release): each test-client request ends by removing the session.
    db.session.commit()
    return Recipient(campaign.id, mailing.id, supporter.id, token)


@pytest.fixture
def campaign():
    return make_campaign()


@pytest.fixture
def recipient(settings, campaign) -> Recipient:
    return make_recipient(settings, campaign)


def form_of(html: str) -> dict:
    """Return the hidden fields and the textarea of the page's form."""
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))
    textarea = re.search(r"<textarea[^>]*>(.*?)</textarea>", html, re.S)
    if textarea:
        import html as html_lib

        fields["letter"] = html_lib.unescape(textarea.group(1))
    return fields


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    """Start and leave every test with no public-form POSTs counted (the limiter is on)."""
    limiter.reset()
    yield
    limiter.reset()


def aged(form: dict, settings, form_url: str, seconds: float = 10) -> dict:
    """Return the form as if its page had been shown `seconds` ago (a person, not a script)."""
    return {**form, "started": started_stamp(settings.secret_keys, form_url, time.time() - seconds)}


def public_form(client, settings, slug: str, **fields) -> dict:
    """Return the public page's form, shown long enough ago, with `fields` filled in."""
    path = f"/campaigns/{slug}"
    return {**aged(form_of(client.get(path).get_data(as_text=True)), settings, path), **fields}


def pending_for(email: str) -> list[PendingAction]:
    return db.session.scalars(
        select(PendingAction).where(PendingAction.email == email).order_by(PendingAction.id)
    ).all()


def confirm_path(settings, pending: PendingAction) -> str:
    return f"/confirm/{ConfirmTokens(settings.secret_keys).dumps(pending.id)}"
