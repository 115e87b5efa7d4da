"""The demo's draft mailing, "28 children — act now", to the Urgent Action Network."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.mailings.models import Mailing
from app.supporters.models import MailingList

DEMO_MAILING_NAME = "28 children — act now"


def load_demo_mailing(session: Session, settings) -> int:
    """Add the draft demo mailing to the Urgent Action Network if missing; return 1 if added."""
    if session.scalar(select(Mailing.id).where(Mailing.name == DEMO_MAILING_NAME)) is not None:
        return 0
    network = session.scalar(select(MailingList).where(MailingList.name == "Urgent Action Network"))
    session.add(
        Mailing(
            name=DEMO_MAILING_NAME,
            subject='{{ first_name | default("Friend") }}, 28 children could be deported within days',
            preheader="ICE can stop these deportations today. Please write now.",
            from_name=settings.organisation_name,
            layout="demo_28_children",
            audience={"include_lists": [network.id]} if network else {},
        )
    )
    session.flush()
    return 1
