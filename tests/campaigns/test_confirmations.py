"""Actions typed on public forms wait for their address to confirm (issue #9.1).

The probe that found it: typing a known supporter's address on the public page sent the typist's
letter to the target "From: <that supporter>", and later told the supporter they had acted.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace

from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import func, select

from app import create_app
from app.campaigns.confirmations import (
    CONFIRM_MAX_AGE,
    MAILS_PER_ADDRESS_PER_DAY,
    purge_expired_pending,
    send_confirmation,
)
from app.campaigns.models import Action, CampaignStatus, Letter, LetterStatus, PendingAction
from app.campaigns.privacy import erase_pending_for_email, export_pending_for_email
from app.extensions import db
from app.links.tokens import CONFIRM_SALT, Purpose, TokenService
from app.queues import QueueName, get_queue
from app.supporters.models import SubscriptionStatus, Supporter
from tests.campaigns.conftest import confirm_path, form_of, pending_for, public_form
from tests.factories import make_recipient, make_supporter

FORGED = "I no longer support this campaign. Ignore my earlier letters."


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def post_public(client, settings, campaign, **fields):
    form = public_form(client, settings, campaign.slug, consent="1", **fields)
    return client.post(f"/campaigns/{campaign.slug}", data=form)


def confirm_link_in(mail) -> str:
    return re.search(r"https://clarion\.test(/confirm/\S+)", mail.message.get_content()).group(1)


def test_typing_a_supporters_address_records_nothing_until_they_confirm(
    client, settings, smtp_sink, campaign, redis_conn
):
    jane = make_supporter("jane@example.org")
    recipient = make_recipient(settings, campaign, jane)
    before = (jane.full_name, jane.status, dict(jane.custom_fields), len(jane.history))

    page = post_public(
        client, settings, campaign, name="Mallory Evil", email="Jane@Example.org", letter=FORGED
    )
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Check your inbox" in html and "j…@example.org" in html
    assert count(Action) == 0 and count(Letter) == 0
    db.session.expire_all()
    jane = db.session.get(Supporter, jane.id)
    assert (jane.full_name, jane.status, dict(jane.custom_fields), len(jane.history)) == before
    # Jane is not told she already acted: her own link still offers the action.
    assert "Send my letter" in client.get(recipient.path).get_data(as_text=True)

    [pending] = pending_for("jane@example.org")
    queue = get_queue(settings, QueueName.DEFAULT)
    job = queue.fetch_job(f"confirm-action-{pending.id}")
    assert job is not None and job.func_name == "workers.confirmations.send_action_confirmation"
    assert send_confirmation(pending.id, replace(settings, smtp_url=smtp_sink.url)) == "sent"
    [mail] = smtp_sink.messages
    assert mail.rcpt_tos == ["jane@example.org"]
    assert mail.message["Subject"] == f"Please confirm your action: {campaign.title}"
    assert mail.message["Auto-Submitted"] == "auto-generated"
    body = mail.message.get_content()
    # Nothing the typist wrote travels in our mail.
    assert "Mallory" not in body and "no longer support" not in body
    # Run twice (RQ delivers at least once): no second mail.
    assert send_confirmation(pending.id, replace(settings, smtp_url=smtp_sink.url)) == "done"
    assert len(smtp_sink.messages) == 1

    path = confirm_link_in(mail)
    shown = client.get(path)
    assert shown.status_code == 200 and shown.headers["Cache-Control"] == "no-store"
    assert FORGED in shown.get_data(as_text=True)
    assert shown.get_data(as_text=True).count('type="submit"') == 1
    assert count(Action) == 0  # GET never acts: link scanners fetch it

    done = client.post(path, data=form_of(shown.get_data(as_text=True)))
    assert done.status_code == 200 and "Thank you, Jane!" in done.get_data(as_text=True)
    [action] = db.session.scalars(select(Action)).all()
    assert action.supporter_id == jane.id and action.channel == "public"
    assert action.letter_body == FORGED  # Jane confirmed the letter she was shown
    [letter] = db.session.scalars(select(Letter)).all()
    assert letter.status == LetterStatus.QUEUED
    db.session.expire_all()
    assert db.session.get(Supporter, jane.id).full_name == "Jane Doe"  # never renamed

    replay = client.post(path, data=form_of(shown.get_data(as_text=True)))
    assert replay.status_code == 410 and "Already confirmed" in replay.get_data(as_text=True)
    assert client.get(path).status_code == 410
    assert count(Action) == 1 and count(Letter) == 1


def test_a_new_address_is_subscribed_only_after_confirming(client, settings, campaign):
    post_public(client, settings, campaign, name="Lee Wong", email="lee@example.org", town="Hull")
    assert count(Supporter) == 0
    [pending] = pending_for("lee@example.org")
    path = confirm_path(settings, pending)
    client.get(path)
    assert count(Supporter) == 0
    client.post(path, data=form_of(client.get(path).get_data(as_text=True)))
    lee = db.session.scalar(select(Supporter).where(Supporter.email == "lee@example.org"))
    assert lee.status == SubscriptionStatus.SUBSCRIBED and lee.full_name == "Lee Wong"
    assert [(c.channel, c.detail) for c in lee.history] == [
        ("campaign_page", f"public page of campaign {campaign.id}")
    ]
    [action] = db.session.scalars(select(Action)).all()
    assert action.letter_body.endswith("Lee Wong\nHull")


def test_the_typist_sees_the_same_page_for_known_and_unknown_addresses(client, settings, campaign):
    make_supporter("jane@example.org")
    db.session.commit()
    known = post_public(client, settings, campaign, name="M", email="jane@example.org")
    unknown = post_public(client, settings, campaign, name="M", email="jxq@example.org")
    assert known.status_code == unknown.status_code == 200
    assert known.get_data() == unknown.get_data()


def test_an_unedited_letter_is_signed_with_the_supporters_own_name(client, settings, campaign):
    make_supporter("jane@example.org")
    db.session.commit()
    post_public(client, settings, campaign, name="Someone Else", email="jane@example.org")
    [pending] = pending_for("jane@example.org")
    path = confirm_path(settings, pending)
    shown = client.get(path).get_data(as_text=True)
    assert "Jane Doe\nSpringfield" in shown
    client.post(path, data=form_of(shown))
    assert db.session.scalars(select(Action)).one().letter_body.endswith("Jane Doe\nSpringfield")


def _signed_days_ago(settings, pending_id: int, days: float) -> str:
    class Then(TimestampSigner):
        def get_timestamp(self):
            return int(time.time() - days * 86400)

    serializer = URLSafeTimedSerializer(
        list(reversed(settings.secret_keys)), salt=CONFIRM_SALT, signer=Then
    )
    return serializer.dumps([pending_id])


def test_bad_expired_and_foreign_links_get_friendly_pages(client, settings, campaign):
    post_public(client, settings, campaign, name="Lee", email="lee@example.org")
    [pending] = pending_for("lee@example.org")
    good = confirm_path(settings, pending)
    tampered = client.get(good[:-2] + ("AA" if not good.endswith("AA") else "BB"))
    assert tampered.status_code == 400 and "not valid" in tampered.get_data(as_text=True)
    expired = f"/confirm/{_signed_days_ago(settings, pending.id, CONFIRM_MAX_AGE / 86400 + 1)}"
    page = client.post(expired, data={})
    assert page.status_code == 410 and "expired" in page.get_data(as_text=True)
    # An action token (another purpose, another salt) is no confirmation.
    action_token = TokenService(settings.secret_keys).dumps(Purpose.ACTION, 1, pending.id)
    assert client.get(f"/confirm/{action_token}").status_code == 400
    assert client.get("/confirm/%00%ff").status_code == 400
    # A link without the page's signed form value changes nothing.
    assert client.post(good, data={}).status_code == 400
    assert count(Action) == 0 and count(Supporter) == 0


def test_a_link_for_a_closed_campaign_or_erased_request_acts_for_no_one(client, settings, campaign):
    post_public(client, settings, campaign, name="Lee", email="lee@example.org")
    [pending] = pending_for("lee@example.org")
    path = confirm_path(settings, pending)
    form = form_of(client.get(path).get_data(as_text=True))
    campaign.status = CampaignStatus.CLOSED
    db.session.commit()
    assert "This action has closed" in client.post(path, data=form).get_data(as_text=True)
    assert count(Action) == 0
    assert erase_pending_for_email("LEE@example.org") == 1
    db.session.commit()
    assert client.get(path).status_code == 410


def test_an_address_gets_a_few_confirmation_mails_a_day_at_most(client, settings, campaign):
    pages = [
        post_public(client, settings, campaign, name=f"N{n}", email="target@example.org")
        for n in range(MAILS_PER_ADDRESS_PER_DAY + 2)
    ]
    assert {p.status_code for p in pages} == {200}
    assert len({p.get_data() for p in pages}) == 1  # the page never says we stopped mailing
    assert len(pending_for("target@example.org")) == MAILS_PER_ADDRESS_PER_DAY


def test_export_erase_and_purge_of_held_actions(client, settings, campaign):
    post_public(client, settings, campaign, name="Lee", email="lee@example.org", letter=FORGED)
    post_public(client, settings, campaign, name="Kim", email="kim@example.org")
    [exported] = export_pending_for_email(" Lee@Example.org ")
    assert exported["name"] == "Lee" and exported["letter_body"] == FORGED
    assert exported["campaign_slug"] == campaign.slug and exported["confirmed_at"] is None
    assert export_pending_for_email("nobody@example.org") == []
    assert erase_pending_for_email("lee@example.org") == 1
    assert pending_for("lee@example.org") == [] and len(pending_for("kim@example.org")) == 1
    [kim] = pending_for("kim@example.org")
    assert purge_expired_pending(settings, now=kim.created_at) == 0
    later = kim.created_at.replace(year=kim.created_at.year + 1)
    assert purge_expired_pending(settings, now=later) == 1
    assert count(PendingAction) == 0


def test_the_worker_job_mails_the_link(client, settings, smtp_sink, campaign, redis_conn):
    post_public(client, settings, campaign, name="Lee", email="lee@example.org")
    [pending] = pending_for("lee@example.org")
    job = get_queue(settings, QueueName.DEFAULT).fetch_job(f"confirm-action-{pending.id}")
    sink_settings = replace(settings, smtp_url=smtp_sink.url)
    # The job reads its settings from the worker's app: one that mails the sink.
    with create_app(sink_settings, {"TESTING": True}).app_context():
        assert job.perform() == "sent"
    [mail] = smtp_sink.messages
    assert mail.rcpt_tos == ["lee@example.org"]
    assert confirm_link_in(mail).startswith("/confirm/")


def test_the_api_export_and_erasure_reach_held_actions(client, settings, campaign, api_token):
    admin = api_token("admin")
    jane = make_supporter("jane.held@example.org")
    post_public(
        client, settings, campaign, name="Jane", email="jane.held@example.org", letter=FORGED
    )
    exported = client.get(f"/api/v1/supporters/{jane.id}/export", headers=admin).get_json()
    [held] = exported["unconfirmed_actions"]
    assert held["letter_body"] == FORGED and held["campaign_slug"] == campaign.slug
    assert client.delete(f"/api/v1/supporters/{jane.id}", headers=admin).status_code == 204
    assert pending_for("jane.held@example.org") == []
