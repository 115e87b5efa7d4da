"""Withdrawn links on the tracking routes: opens and clicks answer but count nothing, pages 410."""

from __future__ import annotations

from sqlalchemy import func, select

from app.extensions import db
from app.links.tokens import Purpose
from app.tracking import revocations
from app.tracking.models import TrackingEvent
from tests.tracking.conftest import drain


def _event_count() -> int:
    drain()
    return db.session.scalar(select(func.count()).select_from(TrackingEvent))


def _revoke(recipient) -> dict:
    paths = {purpose: recipient.path(purpose) for purpose in Purpose}  # signed before
    revocations.clear_cache()
    revocations.revoke_mailing_links(recipient.mailing_id, actor="test", reason="forwarded")
    db.session.commit()
    return paths


def test_withdrawn_open_and_click_still_answer_but_record_nothing(client, recipient):
    paths = _revoke(recipient)
    pixel = client.get(paths[Purpose.OPEN])
    assert pixel.status_code == 200 and pixel.mimetype == "image/gif"
    click = client.get(paths[Purpose.CLICK] + "/1")
    assert click.status_code == 302 and click.location == "https://act.example.org/petition"
    assert _event_count() == 0


def test_withdrawn_preferences_and_view_pages_say_so(client, recipient):
    paths = _revoke(recipient)
    for purpose in (Purpose.PREFERENCES, Purpose.VIEW):
        page = client.get(paths[purpose])
        assert page.status_code == 410
        assert "This link has been withdrawn" in page.get_data(as_text=True)


def test_withdrawn_mailing_can_still_be_unsubscribed_from(client, recipient):
    paths = _revoke(recipient)
    response = client.post(paths[Purpose.UNSUBSCRIBE], data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert recipient.supporter.status.value == "unsubscribed"


def test_links_of_other_mailings_still_count(client, recipient, tokens):
    from tests.factories import make_delivery, make_sent_mailing

    other = make_sent_mailing("Another alert")
    make_delivery(other, recipient.supporter)
    db.session.commit()
    other_id = other.id
    _revoke(recipient)
    client.get(f"/o/{tokens.dumps(Purpose.OPEN, other_id, recipient.supporter_id)}.gif")
    assert _event_count() == 1
