"""Parsons 6.1.0's real Action Network connector against a live Clarion, only its URL changed."""

from __future__ import annotations

import warnings

import pytest
from requests.exceptions import HTTPError

from app.auth.services import create_token
from app.extensions import db
from app.supporters.models import SubscriptionStatus, Supporter
from tests.factories import make_supporters

with warnings.catch_warnings():  # Parsons warns on import that it installs only core extras
    warnings.simplefilter("ignore", RuntimeWarning)
    import parsons.action_network.action_network as action_network
    from parsons import ActionNetwork

pytestmark = pytest.mark.integration


def connector(live_url: str, secret: str) -> ActionNetwork:
    """Parsons' ActionNetwork with one change, as the README's script makes it: the base URL.

    Its module constant API_URL is the one place Parsons keeps Action Network's address; the
    connector builds both its absolute and its relative request URLs from it.
    """
    original = action_network.API_URL
    action_network.API_URL = f"{live_url}/api/osdi/v1"
    try:
        return ActionNetwork(api_token=secret)
    finally:
        action_network.API_URL = original


def an_id(resource: dict) -> str:
    return next(i.split(":", 1)[1] for i in resource["identifiers"] if i.startswith("action_"))


@pytest.fixture
def secrets():
    _, campaigner = create_token("parsons-sync", "campaigner")
    _, analyst = create_token("parsons-report", "analyst")
    db.session.commit()
    return {"campaigner": campaigner, "analyst": analyst}


def test_people_tags_and_taggings_through_parsons(live, secrets):
    an = connector(live.url, secrets["campaigner"])
    added = an.upsert_person(
        email_address="ada@example.org",
        given_name="Ada",
        family_name="Lovelace",
        tags=["Volunteer", "press"],
        languages_spoken=["en"],
        postal_addresses=[{"postal_code": "N1 9GU", "country": "GB", "locality": "London"}],
        member_id="A-17",
    )
    person_id = an_id(added)
    person = an.get_person(person_id)
    assert person["given_name"] == "Ada" and person["custom_fields"]["member_id"] == "A-17"
    assert person["email_addresses"][0] == {
        "primary": True, "address": "ada@example.org", "status": "subscribed"
    }  # fmt: skip

    again = an.upsert_person(email_address="ADA@example.org", family_name="King", tags=["donor"])
    assert an_id(again) == person_id and again["family_name"] == "King"
    an.update_person(person_id, given_name="Augusta", custom_fields={"member_id": "A-18"})
    person = an.get_person(person_id)
    assert (person["given_name"], person["family_name"]) == ("Augusta", "King")
    assert person["custom_fields"] == {"member_id": "A-18", "town": "London"}

    tags = {t["name"]: an_id(t) for t in an.get_tags()}
    assert set(tags) == {"Volunteer", "press", "donor"}
    assert an_id(an.add_tag("VOLUNTEER")) == tags["Volunteer"]  # unique ignoring case
    new_tag = an_id(an.add_tag("event-2025"))
    link = {"_links": {"osdi:person": {"href": f"{an.api_url}/people/{person_id}"}}}
    tagging = an.create_tagging(new_tag, link)
    (listed,) = an.get_taggings(new_tag)
    assert an_id(listed) == an_id(tagging)
    an.delete_tagging(new_tag, an_id(tagging))
    assert len(an.get_taggings(new_tag)) == 0

    supporter = db.session.get(Supporter, int(person_id))
    db.session.refresh(supporter)
    assert sorted(t.name for t in supporter.tags) == ["Volunteer", "donor", "press"]
    assert {c.actor for c in supporter.history} == {"token:parsons-sync"}


def test_paging_through_parsons_sees_everyone_exactly_once(live, secrets):
    ids = make_supporters(61)
    db.session.commit()
    an = connector(live.url, secrets["analyst"])
    people = an.get_people()
    assert sorted(int(an_id(p)) for p in people) == ids
    assert len(people) == 61  # three pages of 25, 25, 11, then an empty page ends the loop
    only = an.get_people(filter="email_address eq 'supporter7@example.org'")
    assert [an_id(p) for p in only] == [str(ids[7])]
    assert len(an.get_people(limit=30)) == 30


def test_refusals_through_parsons(live, secrets):
    make_supporters(1)
    db.session.commit()
    with pytest.raises(HTTPError, match="Code: 401"):
        connector(live.url, "clr_wrong").get_people()
    analyst = connector(live.url, secrets["analyst"])
    with pytest.raises(HTTPError, match="Code: 403"):
        analyst.upsert_person(email_address="eve@example.org", tags=["x"])
    with pytest.raises(HTTPError, match="Code: 404"):
        analyst.get_person("999999")
    with pytest.raises(HTTPError, match="Code: 400"):
        analyst.get_people(filter="name eq 'x'")
    db.session.expire_all()
    assert db.session.query(Supporter).filter_by(email="eve@example.org").count() == 0


def test_a_sync_through_parsons_never_resubscribes(live, secrets):
    an = connector(live.url, secrets["campaigner"])
    person_id = an_id(an.upsert_person(email_address="gone@example.org"))
    an.upsert_person(email_address=[{"address": "gone@example.org", "status": "unsubscribed"}])
    answer = an.upsert_person(
        email_address=[{"address": "gone@example.org", "status": "subscribed"}]
    )
    assert answer["email_addresses"][0]["status"] == "unsubscribed"
    db.session.expire_all()
    supporter = db.session.get(Supporter, int(person_id))
    assert supporter.status == SubscriptionStatus.UNSUBSCRIBED


def test_campaigns_outreaches_and_messages_through_parsons(
    live, secrets, letters_sent, mailing_with_figures
):
    campaign, supporter, action = letters_sent
    mailing_id = mailing_with_figures.id
    db.session.commit()
    an = connector(live.url, secrets["analyst"])
    (found,) = an.get_advocacy_campaigns()
    assert an_id(found) == str(campaign.id) and found["total_outreaches"] == 1
    assert an.get_advocacy_campaign(campaign.id)["title"] == campaign.title
    (outreach,) = an.get_advocacy_campaign_outreaches(campaign.id)
    assert an_id(outreach) == str(action.id)
    assert an.get_advocacy_campaign_outreach(campaign.id, action.id)["subject"] == (
        "Release Cesar and Norelia"
    )
    assert len(an.get_person_outreaches(supporter.id)) == 1
    messages = an.get_messages(unpack_statistics=True)
    (row,) = list(messages)
    assert (row["sent"], row["opened"], row["clicked"], row["bounced"]) == (3, 2, 1, 1)
    assert an.get_message(mailing_id)["statistics"]["spam_reports"] == 1
