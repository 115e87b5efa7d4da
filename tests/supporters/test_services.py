"""Supporter services called directly, as jobs and the CLI do."""

from __future__ import annotations

import pytest

from app import privacy
from app.extensions import db
from app.supporters import services
from app.supporters.emails import email_hash
from app.supporters.models import CustomField, ErasedEmail, MailingList, SubscriptionStatus

S = SubscriptionStatus


def test_upsert_creates_then_updates_and_registers_custom_fields():
    supporter, created = services.upsert_supporter(
        {"email": " X@Example.org", "custom_fields": {"ward": "N"}}, actor="test"
    )
    assert created and supporter.email == "x@example.org"
    assert db.session.get(CustomField, "ward") is not None
    same, created = services.upsert_supporter(
        {"email": "x@example.org", "source": "web"}, actor="t"
    )
    assert not created and same is supporter and supporter.source == "web"
    assert [c.new_status for c in supporter.history] == [S.SUBSCRIBED]


def test_invalid_email_is_refused():
    with pytest.raises(services.InvalidSupporterData) as caught:
        services.normalise_email("nobody@")
    assert "email" in caught.value.details


@pytest.mark.parametrize("status", [S.UNSUBSCRIBED, S.BOUNCED, S.COMPLAINED])
def test_suppressed_supporters_need_consent(status):
    supporter, _ = services.upsert_supporter({"email": "s@example.org"}, actor="t")
    services.set_status(supporter, status, consent=None, actor="t")
    services.upsert_supporter({"email": "s@example.org", "first_name": "S"}, actor="t")
    assert supporter.status == status
    with pytest.raises(services.SupporterConflict):
        services.set_status(supporter, S.SUBSCRIBED, consent=None, actor="t")
    services.set_status(supporter, S.SUBSCRIBED, consent={"channel": "double_opt_in"}, actor="t")
    assert supporter.status == S.SUBSCRIBED
    assert supporter.history[-1].channel == "double_opt_in"


def test_refused_status_change_leaves_fields_alone():
    supporter, _ = services.upsert_supporter({"email": "r@example.org"}, actor="t")
    services.set_status(supporter, S.UNSUBSCRIBED, consent=None, actor="t")
    with pytest.raises(services.SupporterConflict):
        services.update_supporter(
            supporter, {"first_name": "New", "status": "subscribed"}, actor="t"
        )
    assert supporter.first_name is None


def test_erase_stores_the_hash_of_suppressed_addresses_only():
    kept, _ = services.upsert_supporter({"email": "keep@example.org"}, actor="t")
    gone, _ = services.upsert_supporter({"email": "gone@example.org"}, actor="t")
    services.set_status(gone, S.COMPLAINED, consent=None, actor="t")
    privacy.erase_supporter(kept)
    privacy.erase_supporter(gone)
    assert db.session.get(ErasedEmail, email_hash("keep@example.org")) is None
    assert db.session.get(ErasedEmail, email_hash("gone@example.org")).status == S.COMPLAINED
    again, created = services.upsert_supporter({"email": "gone@example.org"}, actor="t")
    assert created and again.status == S.COMPLAINED


def test_add_list_members_reports_unknowns():
    mailing_list = MailingList(name="L")
    db.session.add(mailing_list)
    supporter, _ = services.upsert_supporter({"email": "m@example.org"}, actor="t")
    result = services.add_list_members(mailing_list, [supporter.id, 12345678], ["M@example.org "])
    assert result["added"] == 1 and result["not_found"]["supporter_ids"] == [12345678]
    assert services.member_counts()[mailing_list.id] == (1, 1)
    assert services.remove_list_member(mailing_list, supporter.id)
    assert not services.remove_list_member(mailing_list, supporter.id)
