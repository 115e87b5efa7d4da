"""Tracked clicks: redirect only to the stored URL, record once, tell machines apart."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.extensions import db
from app.links.tokens import Purpose
from app.mailings.models import MailingLink
from app.tracking.models import EventKind, TrackingEvent
from tests.factories import make_delivery, make_sent_mailing, make_supporter
from tests.tracking.conftest import drain

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
UA = {"User-Agent": FIREFOX}


def events(kind=None):
    drain()
    query = select(TrackingEvent).order_by(TrackingEvent.id)
    if kind:
        query = query.where(TrackingEvent.kind == kind)
    return db.session.scalars(query).all()


def click_path(recipient, position: int) -> str:
    return f"{recipient.path(Purpose.CLICK)}/{position}"


def test_click_redirects_to_the_stored_url_and_implies_an_open(client, recipient):
    response = client.get(click_path(recipient, 1) + "?next=https://evil.example", headers=UA)
    assert response.status_code == 302
    assert response.headers["Location"] == "https://act.example.org/petition"
    click, opened = events(EventKind.CLICK), events(EventKind.OPEN)
    assert len(click) == 1 and len(opened) == 1
    link = db.session.scalar(
        select(MailingLink).where(
            MailingLink.mailing_id == recipient.mailing_id, MailingLink.position == 1
        )
    )
    assert click[0].link_id == link.id and click[0].link_position == 1
    assert not click[0].machine and not opened[0].machine


def test_repeated_clicks_are_recorded_once(client, recipient):
    for _ in range(3):
        assert client.get(click_path(recipient, 2), headers=UA).status_code == 302
    assert len(events(EventKind.CLICK)) == 1
    assert len(events(EventKind.OPEN)) == 1


def test_an_existing_open_is_not_doubled_by_a_click(client, recipient):
    client.get(recipient.path(Purpose.OPEN), headers=UA)
    client.get(click_path(recipient, 1), headers=UA)
    assert len(events(EventKind.OPEN)) == 1


def test_unknown_position_is_a_friendly_404(client, recipient):
    response = client.get(click_path(recipient, 99), headers=UA)
    assert response.status_code == 404
    assert b"Link not found" in response.data and b"<html" in response.data
    assert events() == []


def test_link_of_another_mailing_is_a_404(client, recipient):
    # Another mailing with more links: its position 9 exists, but not in the token's mailing.
    body = (
        "<mj-section><mj-column><mj-text>"
        + "".join(f'<a href="https://other.example/{n}">link {n}</a> ' for n in range(1, 10))
        + "</mj-text></mj-column></mj-section>"
    )
    other = make_sent_mailing("Other", body=body)
    assert any(link.position == 9 for link in other.links)
    response = client.get(click_path(recipient, 9), headers=UA)
    assert response.status_code == 404
    assert "other.example" not in response.headers.get("Location", "")


def test_tampered_or_wrong_purpose_token_is_a_friendly_400(client, recipient):
    good = recipient.token(Purpose.CLICK)
    tampered = good[:-10] + ("A" if good[-10] != "A" else "B") + good[-9:]
    for token in (tampered, good[: len(good) // 2], recipient.token(Purpose.OPEN)):
        response = client.get(f"/c/{token}/1", headers=UA)
        assert response.status_code == 400, token
        assert b"This link is not valid" in response.data
    assert events() == []


def test_honeypot_click_is_a_machine_and_not_redirected_without_target(client, recipient):
    honeypot = db.session.scalar(
        select(MailingLink).where(
            MailingLink.mailing_id == recipient.mailing_id, MailingLink.position == 0
        )
    )
    assert honeypot.is_honeypot
    honeypot.url = ""
    db.session.commit()
    response = client.get(click_path(recipient, 0), headers=UA)
    assert response.status_code == 204 and "Location" not in response.headers
    (click,) = events(EventKind.CLICK)
    assert click.machine and click.machine_reason == "honeypot"
    (opened,) = events(EventKind.OPEN)
    assert opened.machine


def test_head_request_is_a_machine_click(client, recipient):
    response = client.head(click_path(recipient, 1), headers=UA)
    assert response.status_code == 302
    (click,) = events(EventKind.CLICK)
    assert click.machine and click.machine_reason == "head-request"


def test_scanner_user_agent_is_a_machine_click(client, recipient):
    client.get(click_path(recipient, 1), headers={"User-Agent": "Barracuda Sentinel (EE)"})
    (click,) = events(EventKind.CLICK)
    assert click.machine and click.user_agent_class == "scanner:barracuda"


def test_click_seconds_after_delivery_is_a_machine(client, tokens):
    mailing = make_sent_mailing()
    supporter = make_supporter("fast@example.org")
    make_delivery(mailing, supporter, sent_ago=timedelta(seconds=3))
    token = tokens.dumps(Purpose.CLICK, mailing.id, supporter.id)
    assert client.get(f"/c/{token}/1", headers=UA).status_code == 302
    (click,) = events(EventKind.CLICK)
    assert click.machine and click.machine_reason == "too-fast"


def test_every_link_clicked_at_once_makes_all_of_them_machine(client, recipient):
    for position in (1, 2, 3):
        assert client.get(click_path(recipient, position), headers=UA).status_code == 302
    clicks = events(EventKind.CLICK)
    assert [(c.link_position, c.machine) for c in clicks] == [(1, True), (2, True), (3, True)]
    assert {c.machine_reason for c in clicks} == {"burst"}
    # The open the first click implied was the scanner's too.
    assert [o.machine for o in events(EventKind.OPEN)] == [True]


def test_a_later_click_is_judged_on_its_own(client, recipient):
    for position in (1, 2, 3):
        client.get(click_path(recipient, position), headers=UA)
    # Move the burst into the past, as if the person clicks a minute later.
    for event in events():
        event.occurred_at -= timedelta(minutes=1)
    db.session.commit()
    client.get(click_path(recipient, 2), headers=UA)
    human = [c for c in events(EventKind.CLICK) if not c.machine]
    assert [(c.link_position, c.machine_reason) for c in human] == [(2, None)]


def test_click_of_erased_supporter_still_redirects(client, recipient):
    db.session.delete(recipient.supporter)
    db.session.commit()
    response = client.get(click_path(recipient, 1), headers=UA)
    assert response.status_code == 302
    assert events() == []
