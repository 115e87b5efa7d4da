"""The preferences page: leave lists, unsubscribe from all, resubscribe when allowed."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.extensions import db
from app.links.tokens import Purpose
from app.supporters.models import (
    ListMembership,
    MailingList,
    SubscriptionChange,
    SubscriptionStatus,
    Supporter,
)
from app.supporters.services import change_status


def add_lists(recipient, *names) -> dict[str, int]:
    ids = {}
    for name in names:
        mailing_list = MailingList(name=name)
        db.session.add(mailing_list)
        db.session.flush()
        db.session.add(ListMembership(list_id=mailing_list.id, supporter_id=recipient.supporter_id))
        ids[name] = mailing_list.id
    db.session.commit()
    return ids


def member_of(recipient) -> set[int]:
    return set(
        db.session.scalars(
            select(ListMembership.list_id).where(
                ListMembership.supporter_id == recipient.supporter_id
            )
        )
    )


def status_of(recipient):
    return db.session.scalar(select(Supporter.status).where(Supporter.id == recipient.supporter_id))


def post(client, recipient, data, **headers):
    token = recipient.token(Purpose.PREFERENCES)
    return client.post(f"/p/{token}", data={"token": token, **data}, headers=headers)


def test_page_lists_the_supporters_lists_with_labelled_checkboxes(client, recipient):
    ids = add_lists(recipient, "Urgent actions", "Monthly news")
    response = client.get(recipient.path(Purpose.PREFERENCES))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    for name, list_id in ids.items():
        assert f'<label class="choice" for="list-{list_id}">' in page
        assert f'id="list-{list_id}" name="keep" value="{list_id}" checked' in page
        assert name in page
    assert "Unsubscribe from all emails" in page
    assert "Resubscribe" not in page
    assert 'name="viewport"' in page and '<html lang="en">' in page


def test_unticking_a_list_leaves_only_that_list(client, recipient):
    ids = add_lists(recipient, "Urgent actions", "Monthly news")
    response = post(client, recipient, {"action": "save", "keep": [ids["Monthly news"]]})
    assert response.status_code == 200
    assert "You have left: Urgent actions." in response.get_data(as_text=True)
    assert member_of(recipient) == {ids["Monthly news"]}
    assert status_of(recipient) == SubscriptionStatus.SUBSCRIBED


def test_unsubscribe_from_all_then_resubscribe(client, recipient):
    response = post(client, recipient, {"action": "unsubscribe_all"})
    assert response.status_code == 200
    assert status_of(recipient) == SubscriptionStatus.UNSUBSCRIBED
    assert "Resubscribe me" in response.get_data(as_text=True)
    response = post(client, recipient, {"action": "resubscribe"})
    assert response.status_code == 200
    assert status_of(recipient) == SubscriptionStatus.SUBSCRIBED
    changes = db.session.scalars(
        select(SubscriptionChange)
        .where(SubscriptionChange.supporter_id == recipient.supporter_id)
        .order_by(SubscriptionChange.id)
    ).all()
    assert [(c.new_status, c.channel, c.actor) for c in changes[-2:]] == [
        (SubscriptionStatus.UNSUBSCRIBED, "preferences", "supporter"),
        (SubscriptionStatus.SUBSCRIBED, "preferences", "supporter"),
    ]


def test_bounced_or_complained_cannot_resubscribe_here(client, recipient):
    for status in (SubscriptionStatus.BOUNCED, SubscriptionStatus.COMPLAINED):
        change_status(recipient.supporter, status, channel="bounce")
        db.session.commit()
        page = client.get(recipient.path(Purpose.PREFERENCES)).get_data(as_text=True)
        assert "Resubscribe me" not in page
        assert "please contact" in page
        response = post(client, recipient, {"action": "resubscribe"})
        assert response.status_code == 409
        assert status_of(recipient) == status


def test_post_from_another_site_is_refused(client, recipient):
    response = post(client, recipient, {"action": "unsubscribe_all"}, Origin="https://evil.example")
    assert response.status_code == 400
    assert status_of(recipient) == SubscriptionStatus.SUBSCRIBED


def test_post_from_this_site_is_accepted(client, recipient):
    response = post(client, recipient, {"action": "unsubscribe_all"}, Origin="http://localhost")
    assert response.status_code == 200
    assert status_of(recipient) == SubscriptionStatus.UNSUBSCRIBED


def test_post_without_the_token_field_is_refused(client, recipient):
    token = recipient.token(Purpose.PREFERENCES)
    response = client.post(f"/p/{token}", data={"action": "unsubscribe_all"})
    assert response.status_code == 400
    assert status_of(recipient) == SubscriptionStatus.SUBSCRIBED


def test_unsubscribe_token_does_not_open_preferences(client, recipient):
    response = client.get(f"/p/{recipient.token(Purpose.UNSUBSCRIBE)}")
    assert response.status_code == 400


def test_erased_supporter_is_410(client, recipient):
    db.session.delete(recipient.supporter)
    db.session.commit()
    assert client.get(recipient.path(Purpose.PREFERENCES)).status_code == 410


@pytest.mark.parametrize("keep", ["\u00b2", "\u0663", "99999999999999999999", "-1", "0", ""])
def test_odd_keep_values_are_ignored_not_a_500(client, recipient, keep):
    ids = add_lists(recipient, "Urgent Action", "Newsletter")
    token = recipient.token(Purpose.PREFERENCES)
    response = client.post(
        f"/p/{token}",
        data={"token": token, "action": "save", "keep": [str(ids["Newsletter"]), keep]},
    )
    assert response.status_code == 200
    assert member_of(recipient) == {ids["Newsletter"]}
