"""The action link in every mail: GET shows, POST acts once, for the right person."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.campaigns.models import Action, CampaignKind, Letter, LetterStatus
from app.db import utcnow
from app.extensions import db
from app.supporters.models import SubscriptionStatus, Supporter
from app.tracking.models import EventKind, TrackingEvent
from tests.campaigns.conftest import aged, confirm_path, form_of, pending_for, public_form
from tests.factories import make_campaign, make_recipient, make_supporter


def actions():
    return db.session.scalars(select(Action)).all()


def test_get_shows_the_addressed_and_signed_letter_and_never_acts(client, recipient):
    page = client.get(recipient.path)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Reunite a family seeking safety" in html
    assert "Dear Acting Director Lyons,\n" in html
    assert "Jane Doe\nSpringfield" in html
    assert '<label for="letter">' in html and html.count('type="submit"') == 1
    assert "<strong>detained</strong>" in html and "<script>" not in html
    assert "Not Jane Doe?" in html and "?not_me=1" in html
    assert page.headers["Cache-Control"] == "no-store"
    client.get(recipient.path)
    client.head(recipient.path)
    assert actions() == []


def test_post_acts_once_and_a_second_post_says_already(client, recipient):
    form = form_of(client.get(recipient.path).get_data(as_text=True))
    form["letter"] = form["letter"].replace("I urge you", "I, a nurse, urge you")
    first = client.post(recipient.path, data=form)
    assert first.status_code == 200
    assert "Thank you, Jane!" in first.get_data(as_text=True)
    second = client.post(recipient.path, data=form)
    assert second.status_code == 200
    assert "already" in second.get_data(as_text=True)
    [action] = actions()
    assert action.supporter_id == recipient.supporter_id
    assert action.mailing_id == recipient.mailing_id
    assert "I, a nurse, urge you" in action.letter_body
    [letter] = db.session.scalars(select(Letter)).all()
    assert letter.status == LetterStatus.QUEUED
    [event] = db.session.scalars(
        select(TrackingEvent).where(TrackingEvent.kind == EventKind.ACTION)
    ).all()
    assert event.supporter_id == recipient.supporter_id and not event.machine


def test_post_without_the_signed_form_value_changes_nothing(client, recipient):
    page = client.post(recipient.path, data={"letter": "forged"})
    assert page.status_code == 400
    assert "Nothing was sent" in page.get_data(as_text=True)
    assert actions() == []


def confirm(client, settings, email):
    """Follow the confirmation link held for `email`: GET the page, POST its one button."""
    [pending] = pending_for(email)
    path = confirm_path(settings, pending)
    return client.post(path, data=form_of(client.get(path).get_data(as_text=True)))


def test_not_me_holds_the_action_for_the_other_person_until_they_confirm(
    client, settings, recipient
):
    not_me = recipient.path + "?not_me=1"
    page = client.get(not_me).get_data(as_text=True)
    assert 'name="email"' in page and 'name="consent"' in page and "Jane" not in page
    form = aged(form_of(page), settings, not_me)
    form.update(name="Amir Haddad", email="Amir@Example.net", town="Leeds")
    refused = client.post(not_me, data=form)
    assert refused.status_code == 422 and "tick the box" in refused.get_data(as_text=True)
    assert actions() == []

    form["consent"] = "1"
    held = client.post(not_me, data=form)
    assert held.status_code == 200 and "Check your inbox" in held.get_data(as_text=True)
    assert "a…@example.net" in held.get_data(as_text=True)
    assert actions() == []
    assert db.session.scalar(select(Supporter).where(Supporter.email == "amir@example.net")) is None

    done = confirm(client, settings, "amir@example.net")
    assert done.status_code == 200 and "Thank you, Amir!" in done.get_data(as_text=True)
    amir = db.session.scalar(select(Supporter).where(Supporter.email == "amir@example.net"))
    assert amir.status == SubscriptionStatus.SUBSCRIBED
    assert amir.custom_fields == {"town": "Leeds"}
    assert [(c.channel, c.new_status) for c in amir.history] == [
        ("action_not_me", SubscriptionStatus.SUBSCRIBED)
    ]
    [action] = actions()
    assert action.supporter_id == amir.id and action.channel == "not_me"
    assert action.letter_body.endswith("Amir Haddad\nLeeds")
    # Jane has not acted: her own link still offers her the action.
    assert "Send my letter" in client.get(recipient.path).get_data(as_text=True)


def test_unsubscribed_person_acting_on_public_page_stays_unsubscribed(client, settings, campaign):
    from app.supporters.services import change_status

    sam = make_supporter("sam@example.org", first_name="Sam")
    change_status(sam, SubscriptionStatus.UNSUBSCRIBED, channel="link")
    db.session.commit()
    form = public_form(
        client, settings, campaign.slug, name="Sam Smith", email="sam@example.org", consent="1"
    )
    page = client.post(f"/campaigns/{campaign.slug}", data=form)
    assert page.status_code == 200 and actions() == []
    assert confirm(client, settings, "sam@example.org").status_code == 200
    sam = db.session.scalar(select(Supporter).where(Supporter.email == "sam@example.org"))
    assert sam.status == SubscriptionStatus.UNSUBSCRIBED and sam.full_name == "Sam Doe"
    [action] = actions()
    assert action.supporter_id == sam.id and action.channel == "public"


def test_public_page_creates_a_supporter_with_consent_once_confirmed(client, settings, campaign):
    form = public_form(
        client, settings, campaign.slug, name="Lee Wong", email="lee@example.org", consent="1"
    )
    assert client.post(f"/campaigns/{campaign.slug}", data=form).status_code == 200
    assert db.session.scalar(select(Supporter).where(Supporter.email == "lee@example.org")) is None
    assert confirm(client, settings, "lee@example.org").status_code == 200
    lee = db.session.scalar(select(Supporter).where(Supporter.email == "lee@example.org"))
    assert lee.history[0].channel == "campaign_page"
    assert actions()[0].letter_body.startswith("Dear Acting Director Lyons,")


def test_closed_campaign_shows_closing_date_and_open_campaigns(client, settings):
    closed = make_campaign(slug="closed-one", deadline=utcnow() - timedelta(days=2))
    make_campaign(slug="still-open", title="Stop expulsions")
    recipient = make_recipient(settings, closed)
    page = client.get(recipient.path).get_data(as_text=True)
    assert "This action has closed" in page
    closed_on = closed.deadline.astimezone(__import__("zoneinfo").ZoneInfo("America/New_York"))
    assert f"closed on {closed_on.day} {closed_on:%B %Y}" in page
    assert '<a href="/campaigns/still-open">Stop expulsions</a>' in page
    assert client.post(recipient.path, data={}).status_code == 200
    assert actions() == []


def test_tampered_token_gets_a_friendly_400(client, recipient):
    page = client.get(recipient.path[:-2] + ("AA" if not recipient.path.endswith("AA") else "BB"))
    assert page.status_code == 400
    assert "This link is not valid" in page.get_data(as_text=True)


def test_erased_supporter_gets_410_and_mailing_without_campaign_404(client, settings, campaign):
    from app.privacy import erase_supporter

    recipient = make_recipient(settings, campaign)
    erase_supporter(db.session.get(Supporter, recipient.supporter_id))
    db.session.commit()
    assert client.get(recipient.path).status_code == 410

    other = make_recipient(settings, campaign, make_supporter("kim@example.org"))
    from app.mailings.models import Mailing

    db.session.get(Mailing, other.mailing_id).campaign_id = None
    db.session.commit()
    page = client.get(other.path)
    assert page.status_code == 404 and "No action here" in page.get_data(as_text=True)


def test_petition_signs_as_the_supporter(client, settings):
    petition = make_campaign(slug="petition", kind=CampaignKind.PETITION, letter_body=None)
    recipient = make_recipient(settings, petition)
    html = client.get(recipient.path).get_data(as_text=True)
    assert "Sign as Jane Doe" in html and "<textarea" not in html
    assert client.post(recipient.path, data=form_of(html)).status_code == 200
    assert actions()[0].letter_body is None
    assert db.session.scalars(select(Letter)).all() == []


def test_click_campaign_counts_on_post_then_redirects(client, settings):
    click = make_campaign(
        slug="click", kind=CampaignKind.CLICK, external_url="https://act.example.org/x"
    )
    recipient = make_recipient(settings, click)
    html = client.get(recipient.path).get_data(as_text=True)
    assert actions() == []
    answer = client.post(recipient.path, data=form_of(html))
    assert answer.status_code == 303
    assert answer.headers["Location"] == "https://act.example.org/x"
    assert len(actions()) == 1


def test_after_acting_the_link_says_already_without_a_form(client, recipient):
    form = form_of(client.get(recipient.path).get_data(as_text=True))
    client.post(recipient.path, data=form)
    page = client.get(recipient.path).get_data(as_text=True)
    assert "You have already taken this action" in page and "<form" not in page


def test_bad_letters_get_a_clear_error_and_nothing_is_stored(client, recipient):
    form = form_of(client.get(recipient.path).get_data(as_text=True))
    too_long = client.post(recipient.path, data={**form, "letter": "x" * 20_001})
    assert too_long.status_code == 422
    assert "under 20,000 characters" in too_long.get_data(as_text=True)
    assert actions() == []
    # A NUL anywhere in a page's form is refused before the view (app/security.py).
    with_nul = client.post(recipient.path, data={**form, "letter": "Dear Sir,\x00\r\nPlease."})
    assert with_nul.status_code == 400 and actions() == []
    with_crlf = client.post(recipient.path, data={**form, "letter": "Dear Sir,\r\nPlease."})
    assert with_crlf.status_code == 200
    assert actions()[0].letter_body == "Dear Sir,\nPlease."
