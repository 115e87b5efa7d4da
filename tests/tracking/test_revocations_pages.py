"""Revoked links in the browser: the action page says withdrawn, unsubscribe always works."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.campaigns.models import Action
from app.db import utcnow
from app.extensions import db
from app.links.tokens import Purpose
from app.supporters.models import SubscriptionStatus, Supporter
from app.tracking import revocations
from app.tracking.revocations import LinkRevocation
from app.tracking.views import token_service
from tests.campaigns.conftest import form_of
from tests.factories import make_campaign, make_recipient, make_supporter

WITHDRAWN = "This link has been withdrawn"


@pytest.fixture
def campaign():
    return make_campaign()


def test_a_revoked_mailing_action_link_is_withdrawn_and_another_mailing_still_works(
    client, settings, campaign
):
    supporter = make_supporter()
    revoked = make_recipient(settings, campaign, supporter)
    other = make_recipient(settings, campaign, supporter)
    form = form_of(client.get(revoked.path).get_data(as_text=True))
    revocations.revoke_mailing_links(revoked.mailing_id, actor="test", reason="forwarded")
    db.session.commit()

    page = client.get(revoked.path)
    assert page.status_code == 410
    assert WITHDRAWN in page.get_data(as_text=True)
    assert page.headers["Cache-Control"] == "no-store"
    # A form already open in a tab cannot act either.
    assert client.post(revoked.path, data=form).status_code == 410
    assert db.session.scalars(select(Action)).all() == []

    still = client.get(other.path)
    assert still.status_code == 200
    assert "Reunite a family seeking safety" in still.get_data(as_text=True)


def test_after_a_supporter_revocation_a_re_sent_link_works(client, settings, campaign, sign_at):
    recipient = make_recipient(settings, campaign)
    old = sign_at(Purpose.ACTION, recipient.mailing_id, recipient.supporter_id, time.time() - 120)
    revocation = revocations.revoke_supporter_links(recipient.supporter_id, actor="test")
    # The revocation was a minute ago; the mail is sent again now.
    db.session.execute(
        update(LinkRevocation)
        .where(LinkRevocation.id == revocation.id)
        .values(revoked_at=utcnow() - timedelta(seconds=60))
    )
    db.session.commit()
    revocations.clear_cache()
    assert client.get(f"/a/{old}").status_code == 410
    resent = make_recipient(settings, campaign, db.session.get(Supporter, recipient.supporter_id))
    assert client.get(resent.path).status_code == 200


def test_unsubscribe_still_works_after_every_revocation(client, settings, campaign):
    recipient = make_recipient(settings, campaign)
    ids = recipient.mailing_id, recipient.supporter_id
    unsubscribe = f"/u/{token_service().dumps(Purpose.UNSUBSCRIBE, *ids)}"
    revocations.revoke_mailing_links(recipient.mailing_id, actor="test")
    revocations.revoke_supporter_links(recipient.supporter_id, actor="test")
    db.session.commit()
    assert client.get(recipient.path).status_code == 410

    confirm = client.get(unsubscribe)
    assert confirm.status_code == 200
    assert WITHDRAWN not in confirm.get_data(as_text=True)
    one_click = client.post(
        unsubscribe,
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert one_click.status_code == 200
    status = db.session.scalar(
        select(Supporter.status).where(Supporter.id == recipient.supporter_id)
    )
    assert status == SubscriptionStatus.UNSUBSCRIBED
