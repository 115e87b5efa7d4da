"""Demo campaigns built from three real Urgent Actions (facts from the seeds, our own words)."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.campaigns.models import Campaign, CampaignKind, CampaignStatus, CampaignTarget
from app.campaigns.services import end_of_day
from app.demo.mailings import DEMO_MAILING_NAME
from app.mailings.models import Mailing

LINKED_SLUG = "reunite-venezuelan-family"
SIGNATURE = "\n\nYours sincerely,\n{supporter_name}\n{supporter_town}"

DEMO_CAMPAIGNS = (
    {
        "slug": LINKED_SLUG,
        "title": "Stop separating a family seeking safety",
        "reference": "UA family separation (USA)",
        "kind": CampaignKind.LETTER,
        "days_open": 21,  # the seed's deadline was 24 June 2025
        "summary": (
            "<p>On 21 March 2025 immigration officers in Washington, DC detained Cesar and "
            "Norelia, Venezuelan parents with Temporary Protected Status and pending asylum "
            "claims, and took them away from their three children, all under twelve.</p>"
            "<p>Holding people who have valid TPS is unlawful. Ask ICE to release them.</p>"
        ),
        "letter_subject": "Release Cesar and Norelia to their children",
        "letter_body": (
            "{salutation},\n\n"
            "I am writing to ask you to release Cesar and Norelia (A# 246149580 and 246149581) "
            "without delay so they can go home to their three young children.\n\n"
            "They were detained on 21 March 2025 although both hold valid Temporary Protected "
            "Status and have asylum claims pending, and they were charged with irregular entry "
            "more than two years after reaching the United States. A person granted TPS may not "
            "be detained because of their immigration status, and nobody may be punished for "
            "the way they arrived when seeking asylum.\n\n"
            "Separating children from their parents causes lasting harm. Please reunite this "
            "family and end family separation and family detention." + SIGNATURE
        ),
        "thank_you": "<p>Your letter is on its way to ICE. Thank you for standing with this family.</p>",
        "targets": [
            {
                "name": "Todd Lyons",
                "title": "Acting Director",
                "organisation": "U.S. Immigration and Customs Enforcement",
                "salutation": "Dear Acting Director Lyons",
                # Never a real address: a demo that sends would write to a real official.
                # The name, title and postal address are the seed's; the mailbox is reserved.
                "email": "todd.lyons@ice.example",
                "postal_address": "500 12th St SW\nWashington, DC 20536\nUSA",
            }
        ],
    },
    {
        "slug": "no-mass-deportations",
        "title": "Protect people seeking safety in the USA",
        "reference": "UA mass deportations (USA), 21 January 2025",
        "kind": CampaignKind.LETTER,
        "days_open": 14,  # the seed's deadline was 3 March 2025
        "summary": (
            "<p>The new administration has promised mass arrests, mass detention and mass "
            "removals of immigrants and people seeking safety. That would break families "
            "apart, deny people the chance to claim asylum and send some back to danger.</p>"
        ),
        "letter_subject": "Abandon plans for mass deportations",
        "letter_body": (
            "{salutation}:\n\n"
            "I ask you to respect the human rights of immigrants and people seeking safety in "
            "the United States and to drop all plans for mass deportations.\n\n"
            "Every country may regulate who enters and stays, but only within its human rights "
            "obligations: no one may be returned to a place where they risk torture or other "
            "serious harm, everyone has the right to seek asylum, and no one may be detained "
            "arbitrarily or deported without due process. Please also respect family unity, "
            "children's rights and the right to be free from discrimination." + SIGNATURE
        ),
        "targets": [
            {
                "name": "Donald Trump",
                "title": "President of the United States",
                "organisation": "The White House",
                "salutation": "Dear President Trump",
                "email": None,  # a web form only: letters are printed and posted
                "postal_address": "1600 Pennsylvania Avenue NW\nWashington, DC 20500\nUSA",
            }
        ],
    },
    {
        "slug": "stop-expulsions-el-salvador",
        "title": "Stop illegal expulsions to El Salvador",
        "reference": "UA 034/25",
        "kind": CampaignKind.LETTER,
        "days_open": 28,  # the seed's deadline was 1 July 2025
        "summary": (
            "<p>Invoking the Alien Enemies Act, the US government removed 255 people to El "
            "Salvador in March 2025, 238 of them on 16 March despite a court order. They are "
            "held in CECOT, a prison known for overcrowding and ill-treatment.</p>"
            "<p>Ask the Secretary of Homeland Security to bring them back and stop further "
            "expulsions.</p>"
        ),
        "letter_subject": "Return the people expelled to El Salvador",
        "letter_body": (
            "{salutation},\n\n"
            "I am deeply concerned about the expulsion of people from the United States to El "
            "Salvador under the Alien Enemies Act: 238 on 16 March, in defiance of a court "
            "order, and 17 more on 30 March.\n\n"
            "Among them are people whose cases were still in the courts, people with no "
            "criminal record and people already protected under the Convention Against "
            "Torture. They are held in CECOT, where overcrowding, denial of medical care and "
            "ill-treatment are reported, and their families have had no word of them.\n\n"
            "The principle of non-refoulement forbids sending anyone where they face serious "
            "human rights violations. Please return those expelled so their cases can continue "
            "in the United States, and halt further expulsions in line with the courts' "
            "decisions." + SIGNATURE
        ),
        "targets": [
            {
                "name": "Kristi Noem",
                "title": "Secretary of Homeland Security",
                "organisation": "U.S. Department of Homeland Security",
                "salutation": "Dear Secretary Noem",
                "email": None,
                "postal_address": (
                    "2707 Martin Luther King Jr. Avenue, SE\nWashington, DC 20528\nUSA"
                ),
            }
        ],
    },
)


def load_demo_campaigns(session: Session) -> int:
    """Add the demo campaigns that are missing and link the demo mailing; return how many added."""
    added = 0
    for spec in DEMO_CAMPAIGNS:
        if session.scalar(select(Campaign.id).where(Campaign.slug == spec["slug"])) is not None:
            continue
        values = {k: v for k, v in spec.items() if k not in ("targets", "days_open")}
        # The seeds' deadlines have passed; demo campaigns stay open a few weeks from loading
        # so a local run can act on each of them.
        deadline_day = date.today() + timedelta(days=spec["days_open"])
        session.add(
            Campaign(
                **values,
                timezone="America/New_York",
                deadline=end_of_day(deadline_day, "America/New_York"),
                status=CampaignStatus.OPEN,
                targets=[CampaignTarget(position=n, **t) for n, t in enumerate(spec["targets"])],
            )
        )
        added += 1
    session.flush()
    mailing = session.scalar(select(Mailing).where(Mailing.name == DEMO_MAILING_NAME))
    if mailing is not None and mailing.campaign_id is None:
        mailing.campaign_id = session.scalar(
            select(Campaign.id).where(Campaign.slug == LINKED_SLUG)
        )
    return added
