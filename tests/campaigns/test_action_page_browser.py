"""A supporter acts from their inbox in a real browser: mail → action page → letter → target.

The real app is served on a loopback port (`live`, tests/campaigns/conftest.py), so rows must be
committed (an integration test). Chromium is Debian's; the test is skipped only where
/usr/bin/chromium is missing.
"""

from __future__ import annotations

import re

import pytest

from app.campaigns.confirmations import send_confirmation
from app.campaigns.models import Action, Letter, LetterStatus, PendingAction
from app.extensions import db
from app.mailings.delivery.launch import request_send, start_mailing
from app.mailings.delivery.sending import send_batch
from app.queues import QueueName, get_queue
from app.supporters.models import SubscriptionStatus, Supporter
from tests.browser_support import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, needs_chromium
from tests.factories import make_campaign, make_list, make_mailing, make_supporter

pytestmark = [pytest.mark.integration, needs_chromium]


def _send_mailing_to_jane(live_settings):
    campaign = make_campaign()
    audience = make_list()
    jane = make_supporter("jane@example.org", lists=[audience.name])
    mailing = make_mailing(audience, campaign_id=campaign.id)
    db.session.commit()
    request_send(mailing, live_settings)
    db.session.commit()
    assert start_mailing(mailing.id, live_settings)
    assert send_batch(mailing.id, 0, live_settings).sent == 1
    return jane.id


def test_supporter_acts_from_the_mail_in_a_browser(live, smtp_sink):
    from playwright.sync_api import sync_playwright

    base_url, live_app, live_settings = live
    jane_id = _send_mailing_to_jane(live_settings)
    [mail] = smtp_sink.messages
    message = mail.message
    html = message.get_body(("html",)).get_content()
    action_url = re.search(rf'href="({re.escape(base_url)}/a/[^"]+)"', html).group(1)
    unsubscribe_url = re.search(r"<(http[^>]+)>", message["List-Unsubscribe"]).group(1)
    ARTIFACTS.mkdir(exist_ok=True)
    # Other tests on this xdist worker may have left letter jobs behind: only ours should count.
    get_queue(live_settings, QueueName.DEFAULT).empty()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(action_url)
            letter = page.get_by_label("Your letter")
            assert letter.input_value().startswith("Dear Acting Director Lyons,")
            assert "Jane Doe\nSpringfield" in letter.input_value()
            letter.fill(letter.input_value().replace("I urge you", "As a mother, I urge you"))
            page.screenshot(path=str(ARTIFACTS / "action-page.png"), full_page=True)
            page.get_by_role("button", name="Send my letter").click()
            page.get_by_role("heading", name="Thank you, Jane!").wait_for()
            page.screenshot(path=str(ARTIFACTS / "action-thanks.png"), full_page=True)

            page.goto(unsubscribe_url)
            page.get_by_role("button", name="Unsubscribe me").click()
            page.get_by_role("heading", name="You are unsubscribed").wait_for()
            page.screenshot(path=str(ARTIFACTS / "unsubscribed.png"), full_page=True)
        finally:
            browser.close()

    # The letter job the POST queued, run here in-process against the live app's settings.
    queue = get_queue(live_settings, QueueName.DEFAULT)
    [job] = [queue.fetch_job(i) for i in queue.job_ids if i.startswith("letter-")]
    assert job.func_name == "workers.letters.send_letter"
    with live_app.app_context():
        assert job.perform() == "sent"
    [sent] = [m for m in smtp_sink.messages if m.rcpt_tos == ["todd.lyons@ice.example"]]
    assert sent.message["Reply-To"] == "Jane Doe <jane@example.org>"
    assert "As a mother, I urge you" in sent.message.get_content()

    db.session.expire_all()
    [letter] = db.session.query(Letter).all()
    assert letter.status == LetterStatus.SENT
    assert db.session.get(Supporter, jane_id).status == SubscriptionStatus.UNSUBSCRIBED


def test_someone_acts_on_the_public_page_and_confirms_from_their_inbox(live, smtp_sink):
    """The public page holds the letter; the link in the confirmation mail sends it."""
    from playwright.sync_api import sync_playwright

    base_url, live_app, live_settings = live
    campaign = make_campaign()
    db.session.commit()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{base_url}/campaigns/{campaign.slug}")
            page.get_by_label("Your name").fill("Lee Wong")
            page.get_by_label("Your email address").fill("lee@example.org")
            page.get_by_label("Your town or city").fill("Hull")
            page.get_by_label("I agree").check()
            # People never reach the honeypot: not by label, not by Tab.
            assert page.get_by_label("Leave this empty").get_attribute("tabindex") == "-1"
            page.wait_for_timeout(live_settings.public_form_min_seconds * 1000 + 200)
            page.get_by_role("button", name="Send my letter").click()
            page.get_by_role("heading", name="Check your inbox").wait_for()
            assert "l…@example.org" in page.content()
            db.session.expire_all()
            assert db.session.query(Action).count() == 0
            [pending] = db.session.query(PendingAction).all()
            with live_app.app_context():
                assert send_confirmation(pending.id, live_settings) == "sent"
            [mail] = smtp_sink.messages
            link = re.search(rf"{re.escape(base_url)}/confirm/\S+", mail.message.get_content())
            page.goto(link.group(0))
            page.get_by_role("button", name="Confirm and send my letter").click()
            page.get_by_role("heading", name="Thank you, Lee!").wait_for()
        finally:
            browser.close()
    db.session.expire_all()
    lee = db.session.query(Supporter).filter_by(email="lee@example.org").one()
    assert lee.status == SubscriptionStatus.SUBSCRIBED
    [letter] = db.session.query(Letter).all()
    assert letter.status == LetterStatus.QUEUED
