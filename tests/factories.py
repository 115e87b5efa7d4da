"""Test data factories: real rows in the test database, built in bulk where tests need many.

The one place tests make supporters, lists, mailings, deliveries and campaigns. Factories flush
and return the row (or ids, for the bulk ones); the caller commits when a request or a worker
must see it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import insert, select

from app.campaigns.models import Campaign, CampaignKind, CampaignStatus, CampaignTarget
from app.config import PROJECT_ROOT
from app.db import utcnow
from app.extensions import db
from app.links.tokens import Purpose, TokenService
from app.mailings.models import Delivery, DeliveryStatus, Mailing, MailingLink, MailingStatus
from app.supporters.models import ListMembership, MailingList, Supporter
from app.supporters.services import upsert_supporter
from mailers.render import freeze

LETTER = (
    "{salutation},\n\nI urge you to release Cesar and Norelia to their three children.\n\n"
    "Yours sincerely,\n{supporter_name}\n{supporter_town}"
)

# Three tracked links, for opens and clicks: positions 1-3 in the frozen mailing.
TRACKED_BODY = """
<mj-section><mj-column><mj-text>
  <p>Dear {{ first_name | default("Friend") }},</p>
  <p><a href="https://act.example.org/petition">Sign the petition</a></p>
  <p><a href="https://act.example.org/donate">Donate</a></p>
  <p><a href="https://act.example.org/share">Share</a></p>
</mj-text></mj-column></mj-section>
"""


def make_list(name: str = "Urgent Action Network") -> MailingList:
    mailing_list = MailingList(name=name)
    db.session.add(mailing_list)
    db.session.flush()
    return mailing_list


def make_supporter(email: str = "jane@example.org", **data) -> Supporter:
    """Upsert one subscribed supporter, Jane Doe of Springfield unless `data` says otherwise."""
    data = {
        "first_name": "Jane",
        "last_name": "Doe",
        "custom_fields": {"town": "Springfield"},
        **data,
    }
    supporter, _ = upsert_supporter({"email": email, **data}, actor="test")
    return supporter


def make_supporters(
    count: int, *, mailing_list: MailingList | None = None, domain="example.org", prefix="supporter"
) -> list[int]:
    """Insert `count` subscribed supporters (optionally in a list); return their ids in order."""
    rows = [
        {
            "email": f"{prefix}{n}@{domain}",
            "first_name": f"Name{n}",
            "last_name": "Tester",
            "custom_fields": {"town": "Springfield"},
        }
        for n in range(count)
    ]
    db.session.execute(insert(Supporter), rows)
    ids = list(
        db.session.scalars(
            select(Supporter.id)
            .where(Supporter.email.like(f"{prefix}%@{domain}"))
            .order_by(Supporter.id)
        )
    )
    if mailing_list is not None:
        db.session.execute(
            insert(ListMembership),
            [{"list_id": mailing_list.id, "supporter_id": i} for i in ids],
        )
    db.session.flush()
    return ids


def make_mailing(mailing_list: MailingList | None = None, **fields) -> Mailing:
    """Make a draft of the demo mailing, addressed to `mailing_list` when given."""
    values = {
        "name": "28 children alert",
        "subject": "{{ first_name | default('Friend') }}, 28 children could be deported",
        "layout": "demo_28_children",
        "from_name": "Clarion Alerts",
        "from_email": "alerts@clarion.test",
        "audience": {"include_lists": [mailing_list.id]} if mailing_list else {},
    }
    values.update(fields)
    mailing = Mailing(**values)
    db.session.add(mailing)
    db.session.flush()
    return mailing


def make_sent_mailing(name: str = "Free the journalists", body: str = TRACKED_BODY) -> Mailing:
    """Make a mailing frozen and sent as the send pipeline leaves it, with its tracked links."""
    frozen = freeze(
        "Act now, {{ first_name | default('friend') }}",
        None,
        body,
        None,
        None,
        organisation_name="Rights Watch",
        postal_address="1 Example Street, London",
        templates_dir=PROJECT_ROOT / "templates" / "emails",
    )
    mailing = Mailing(
        name=name,
        subject=name,
        status=MailingStatus.SENT,
        frozen_subject=frozen.subject_source,
        frozen_html=frozen.html_source,
        frozen_text=frozen.text_source,
        frozen_at=utcnow(),
    )
    mailing.links = [
        MailingLink(position=link.position, url=link.url, is_honeypot=link.is_honeypot)
        for link in frozen.links
    ]
    db.session.add(mailing)
    db.session.flush()
    return mailing


def make_delivery(
    mailing: Mailing,
    supporter: Supporter,
    message_id: str | None = None,
    *,
    sent_ago: timedelta = timedelta(hours=1),
) -> Delivery:
    """Record `mailing` as sent to `supporter` `sent_ago`, under `message_id` when given."""
    delivery = Delivery(
        mailing_id=mailing.id,
        supporter_id=supporter.id,
        batch_no=0,
        status=DeliveryStatus.SENT,
        message_id=message_id,
        sent_at=utcnow() - sent_ago,
    )
    db.session.add(delivery)
    db.session.flush()
    return delivery


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


@dataclass
class ActionRecipient:
    """A supporter who was sent a campaign's mailing: ids and their signed action link."""

    campaign_id: int
    mailing_id: int
    supporter_id: int
    token: str

    @property
    def path(self) -> str:
        return f"/a/{self.token}"


def make_recipient(settings, campaign: Campaign, supporter=None) -> ActionRecipient:
    """Send `campaign`'s mailing to `supporter` (Jane by default); commit, for the test client."""
    supporter = supporter or make_supporter()
    mailing = Mailing(
        name="28 children — act now",
        subject="Act",
        status=MailingStatus.SENT,
        campaign_id=campaign.id,
    )
    db.session.add(mailing)
    db.session.flush()
    make_delivery(mailing, supporter)
    token = TokenService(settings.secret_keys).dumps(Purpose.ACTION, mailing.id, supporter.id)
    # Commit (a savepoint release): each test-client request ends by removing the session.
    db.session.commit()
    return ActionRecipient(campaign.id, mailing.id, supporter.id, token)
