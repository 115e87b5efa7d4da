"""The production path: events recorded in autocommit, outside any test transaction."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.extensions import db
from app.links.tokens import Purpose
from app.tracking.models import EventKind, TrackingEvent
from app.tracking.stats import mailing_stats
from tests.factories import make_delivery, make_sent_mailing, make_supporter
from tests.tracking.conftest import drain

UA = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"}


@pytest.mark.integration
def test_open_click_and_unsubscribe_commit_for_real(client, tokens):
    mailing = make_sent_mailing()
    supporter = make_supporter("real@example.org")
    make_delivery(mailing, supporter)
    mailing_id, supporter_id = mailing.id, supporter.id
    db.session.commit()
    db.session.remove()

    def path(purpose, prefix, suffix=""):
        return f"/{prefix}/{tokens.dumps(purpose, mailing_id, supporter_id)}{suffix}"

    assert client.get(path(Purpose.OPEN, "o", ".gif"), headers=UA).status_code == 200
    assert client.get(path(Purpose.CLICK, "c", "/2"), headers=UA).status_code == 302
    assert client.get(path(Purpose.CLICK, "c", "/2"), headers=UA).status_code == 302
    one_click = {"List-Unsubscribe": "One-Click"}
    assert client.post(path(Purpose.UNSUBSCRIBE, "u"), data=one_click).status_code == 200
    assert drain() == 3  # the open and both clicks, recorded by the worker clock

    db.session.remove()
    kinds = sorted(e.kind.value for e in db.session.scalars(select(TrackingEvent)))
    assert kinds == ["click", "open", "unsubscribe"]
    stats = mailing_stats(mailing_id)
    assert stats["clicks"] == {"all": 1, "human": 1}
    assert stats["unsubscribes"] == {"all": 1, "human": 1}
    event = db.session.scalars(
        select(TrackingEvent).where(TrackingEvent.kind == EventKind.CLICK)
    ).one()
    assert event.link_position == 2 and not event.machine
