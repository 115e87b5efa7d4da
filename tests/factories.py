"""Test data factories: real rows in the test database, built in bulk where tests need many."""

from __future__ import annotations

from sqlalchemy import insert, select

from app.extensions import db
from app.mailings.models import Mailing
from app.supporters.models import ListMembership, MailingList, Supporter


def make_list(name: str = "Urgent Action Network") -> MailingList:
    mailing_list = MailingList(name=name)
    db.session.add(mailing_list)
    db.session.flush()
    return mailing_list


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
