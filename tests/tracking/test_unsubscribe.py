"""Unsubscribing: RFC 8058 one-click, the confirm page, and bad or stale tokens."""

from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.links.tokens import Purpose
from app.supporters.models import SubscriptionChange, SubscriptionStatus, Supporter
from app.supporters.services import change_status
from app.tracking.models import EventKind, TrackingEvent

ONE_CLICK = "List-Unsubscribe=One-Click"
FORM = "application/x-www-form-urlencoded"


def status_of(recipient) -> SubscriptionStatus:
    return db.session.scalar(select(Supporter.status).where(Supporter.id == recipient.supporter_id))


def history(recipient) -> list[SubscriptionChange]:
    return db.session.scalars(
        select(SubscriptionChange)
        .where(SubscriptionChange.supporter_id == recipient.supporter_id)
        .order_by(SubscriptionChange.id)
    ).all()


def unsubscribe_events():
    return db.session.scalars(
        select(TrackingEvent).where(TrackingEvent.kind == EventKind.UNSUBSCRIBE)
    ).all()


def test_rfc8058_one_click_post_unsubscribes_at_once(client, recipient):
    response = client.post(recipient.path(Purpose.UNSUBSCRIBE), data=ONE_CLICK, content_type=FORM)
    assert response.status_code == 200
    assert "Location" not in response.headers
    assert response.headers["Content-Type"].startswith("text/plain")
    assert status_of(recipient) == SubscriptionStatus.UNSUBSCRIBED
    change = history(recipient)[-1]
    assert (change.old_status, change.new_status) == (
        SubscriptionStatus.SUBSCRIBED,
        SubscriptionStatus.UNSUBSCRIBED,
    )
    assert (change.channel, change.actor) == ("one_click", "supporter")
    assert change.detail == f"mailing {recipient.mailing_id}"
    (event,) = unsubscribe_events()
    assert event.machine is False and event.delivery_id == recipient.delivery_id


def test_one_click_is_idempotent(client, recipient):
    for _ in range(3):
        response = client.post(
            recipient.path(Purpose.UNSUBSCRIBE), data=ONE_CLICK, content_type=FORM
        )
        assert response.status_code == 200
    assert [c.new_status for c in history(recipient)].count(SubscriptionStatus.UNSUBSCRIBED) == 1
    assert len(unsubscribe_events()) == 1


def test_one_click_as_multipart_works_too(client, recipient):
    response = client.post(
        recipient.path(Purpose.UNSUBSCRIBE), data={"List-Unsubscribe": "One-Click"}
    )
    assert response.status_code == 200
    assert status_of(recipient) == SubscriptionStatus.UNSUBSCRIBED


def test_get_shows_a_confirm_page_and_never_unsubscribes(client, recipient):
    for _ in range(2):
        response = client.get(recipient.path(Purpose.UNSUBSCRIBE))
        assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert '<form method="post">' in page
    assert 'name="confirm" value="1"' in page
    assert '<html lang="en">' in page
    assert status_of(recipient) == SubscriptionStatus.SUBSCRIBED
    assert unsubscribe_events() == []


def test_confirm_button_unsubscribes_and_offers_resubscribe(client, recipient):
    response = client.post(recipient.path(Purpose.UNSUBSCRIBE), data={"confirm": "1"})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "You are unsubscribed" in page
    assert 'href="/p/' in page
    assert status_of(recipient) == SubscriptionStatus.UNSUBSCRIBED
    assert history(recipient)[-1].channel == "link"
    # The page then says so rather than offering the button again.
    again = client.get(recipient.path(Purpose.UNSUBSCRIBE)).get_data(as_text=True)
    assert "already unsubscribed" in again


def test_post_without_confirm_changes_nothing(client, recipient):
    response = client.post(recipient.path(Purpose.UNSUBSCRIBE), data={"other": "x"})
    assert response.status_code == 400
    assert status_of(recipient) == SubscriptionStatus.SUBSCRIBED


def test_token_of_another_purpose_is_rejected(client, recipient):
    open_token = recipient.token(Purpose.OPEN)
    response = client.post(f"/u/{open_token}", data=ONE_CLICK, content_type=FORM)
    assert response.status_code == 400
    assert b"This link is not valid" in response.data
    assert status_of(recipient) == SubscriptionStatus.SUBSCRIBED


def test_tampered_and_truncated_tokens_are_friendly_400s(client, recipient):
    good = recipient.token(Purpose.UNSUBSCRIBE)
    # Change a character inside the signature: the last one may only carry base64 padding bits.
    middle = len(good) - 10
    tampered = good[:middle] + ("A" if good[middle] != "A" else "B") + good[middle + 1 :]
    for token in (tampered, good[:20], "x", "a.b.c"):
        for response in (
            client.get(f"/u/{token}"),
            client.post(f"/u/{token}", data=ONE_CLICK, content_type=FORM),
        ):
            assert response.status_code == 400, token
            assert b"<h1>This link is not valid</h1>" in response.data
    assert status_of(recipient) == SubscriptionStatus.SUBSCRIBED


def test_erased_supporter_gets_already_removed(client, recipient):
    db.session.delete(recipient.supporter)
    db.session.commit()
    response = client.get(recipient.path(Purpose.UNSUBSCRIBE))
    assert response.status_code == 410
    assert b"Already removed" in response.data
    # A mail provider's one-click still gets its 2xx: the person is not mailed either way.
    response = client.post(recipient.path(Purpose.UNSUBSCRIBE), data=ONE_CLICK, content_type=FORM)
    assert response.status_code == 200


def test_bounced_supporter_stays_bounced(client, recipient):
    change_status(recipient.supporter, SubscriptionStatus.BOUNCED, channel="bounce")
    db.session.commit()
    response = client.post(recipient.path(Purpose.UNSUBSCRIBE), data=ONE_CLICK, content_type=FORM)
    assert response.status_code == 200
    assert status_of(recipient) == SubscriptionStatus.BOUNCED


def test_old_unsubscribe_tokens_keep_working(client, recipient, tokens, monkeypatch):
    import time

    made = time.time() - 3 * 365 * 24 * 3600
    monkeypatch.setattr(time, "time", lambda: made)
    old = tokens.dumps(Purpose.UNSUBSCRIBE, recipient.mailing_id, recipient.supporter_id)
    monkeypatch.undo()
    response = client.post(f"/u/{old}", data=ONE_CLICK, content_type=FORM)
    assert response.status_code == 200
    assert status_of(recipient) == SubscriptionStatus.UNSUBSCRIBED


def test_no_cookie_is_needed_or_set(client, recipient):
    response = client.post(recipient.path(Purpose.UNSUBSCRIBE), data=ONE_CLICK, content_type=FORM)
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
