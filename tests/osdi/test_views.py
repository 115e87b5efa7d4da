"""The OSDI API through the Flask test client: shapes, auth, writes and their guarantees."""

from __future__ import annotations

from sqlalchemy import func, select

from app.auth.audit import recent_entries
from app.auth.models import ApiToken
from app.extensions import db
from app.supporters.models import SubscriptionStatus, Supporter, Tag
from tests.factories import make_list, make_supporter, make_supporters

BASE = "/api/osdi/v1"
PERSON_FIELDS = {
    "identifiers", "created_date", "modified_date", "given_name", "family_name",
    "email_addresses", "phone_numbers", "postal_addresses", "languages_spoken", "custom_fields",
    "_links",
}  # fmt: skip


def signup(client, headers, **person):
    body = {"person": {"email_addresses": [{"address": "ada@example.org"}], **person}}
    tags = person.pop("add_tags", None)
    if tags is not None:
        body = {"person": {k: v for k, v in body["person"].items() if k != "add_tags"}}
        body["add_tags"] = tags
    return client.post(f"{BASE}/people", json=body, headers=headers)


def people_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Supporter))


# --- auth ------------------------------------------------------------------------------------


def test_no_token_or_a_bad_one_is_refused_in_osdi_shape(client, osdi_token):
    for headers in ({}, {"OSDI-API-Token": "clr_not-a-token"}, {"Authorization": "Bearer x"}):
        response = client.get(f"{BASE}/people", headers=headers)
        assert response.status_code == 401
        assert response.mimetype == "application/hal+json"
        assert set(response.json) == {"error"} and "token" in response.json["error"]


def test_a_revoked_token_is_refused(client, osdi_token):
    headers = osdi_token("admin")
    db.session.scalars(select(ApiToken)).first().revoked_at = func.now()
    db.session.flush()
    assert client.get(f"{BASE}/people", headers=headers).status_code == 401


def test_an_analyst_reads_but_a_refused_write_changes_nothing(client, osdi_token):
    headers = osdi_token("analyst")
    make_supporter()
    before = people_count()
    assert client.get(f"{BASE}/people", headers=headers).status_code == 200
    response = signup(client, headers, add_tags=["volunteer"])
    assert response.status_code == 403 and "campaigner" in response.json["error"]
    tag = client.post(f"{BASE}/tags", json={"name": "new"}, headers=headers)
    assert tag.status_code == 403
    assert people_count() == before
    assert db.session.scalar(select(func.count()).select_from(Tag)) == 0


def test_entry_point_links_every_collection(client, osdi_token):
    response = client.get(f"{BASE}/", headers=osdi_token("analyst"))
    assert response.status_code == 200 and response.mimetype == "application/hal+json"
    links = response.json["_links"]
    for name in ("people", "tags", "lists", "advocacy_campaigns", "messages"):
        assert links[f"osdi:{name}"]["href"] == f"https://clarion.test{BASE}/{name}"


# --- people ----------------------------------------------------------------------------------


def test_signup_creates_a_subscribed_person_with_tags_and_custom_fields(client, osdi_token):
    headers = osdi_token()
    response = signup(
        client,
        headers,
        given_name="Ada",
        family_name="Lovelace",
        languages_spoken=["en"],
        postal_addresses=[{"postal_code": "N1 9GU", "country": "gb", "locality": "London"}],
        custom_fields={"member_id": "A-17", "donor": True},
        add_tags=["Volunteer", "volunteer", "press"],
    )
    assert response.status_code == 201, response.json
    person = response.json
    assert set(person) == PERSON_FIELDS
    supporter = db.session.get(Supporter, int(person["identifiers"][1].split(":")[1]))
    assert person["identifiers"] == [f"clarion:{supporter.id}", f"action_network:{supporter.id}"]
    assert person["email_addresses"] == [
        {"primary": True, "address": "ada@example.org", "status": "subscribed"}
    ]
    assert person["given_name"] == "Ada" and person["family_name"] == "Lovelace"
    assert person["postal_addresses"] == [
        {"primary": True, "postal_code": "N1 9GU", "locality": "London", "country": "GB"}
    ]
    assert person["languages_spoken"] == ["en"]
    assert person["custom_fields"] == {"member_id": "A-17", "donor": True, "town": "London"}
    assert person["created_date"].endswith("Z")
    assert person["_links"]["osdi:taggings"]["href"].endswith(f"/people/{supporter.id}/taggings")
    assert sorted(t.name for t in supporter.tags) == ["Volunteer", "press"]
    (change,) = supporter.history
    assert (change.new_status, change.channel, change.actor) == (
        SubscriptionStatus.SUBSCRIBED, "osdi", "token:osdi-campaigner"
    )  # fmt: skip


def test_signup_of_an_existing_person_updates_and_matches_tags_ignoring_case(client, osdi_token):
    headers = osdi_token()
    jane = make_supporter("ada@example.org", first_name="Ada", last_name="Byron")
    db.session.add(Tag(name="Volunteer"))
    db.session.flush()
    response = signup(client, headers, family_name="Lovelace", add_tags=["VOLUNTEER"])
    assert response.status_code == 200
    assert response.json["given_name"] == "Ada" and response.json["family_name"] == "Lovelace"
    assert [t.name for t in jane.tags] == ["Volunteer"]
    assert db.session.scalar(select(func.count()).select_from(Tag)) == 1


def test_a_sync_never_resubscribes_an_unsubscribed_person(client, osdi_token):
    headers = osdi_token()
    jane = make_supporter("ada@example.org", status="unsubscribed")
    response = signup(
        client,
        headers,
        email_addresses=[{"address": "ADA@example.org", "status": "subscribed"}],
        given_name="Ada",
    )
    assert response.status_code == 200
    assert response.json["email_addresses"][0]["status"] == "unsubscribed"
    assert jane.status == SubscriptionStatus.UNSUBSCRIBED and jane.first_name == "Ada"
    assert [c.new_status for c in jane.history] == [SubscriptionStatus.UNSUBSCRIBED]


def test_a_sent_status_changes_it_with_history_and_audit(client, osdi_token):
    headers = osdi_token()
    jane = make_supporter("ada@example.org")
    response = signup(
        client,
        headers,
        email_addresses=[{"address": "ada@example.org", "status": "spam complaint"}],
    )
    assert response.json["email_addresses"][0]["status"] == "spam complaint"
    assert jane.status == SubscriptionStatus.COMPLAINED
    assert jane.history[-1].actor == "token:osdi-campaigner"
    entry = recent_entries(limit=1)[0]
    assert (entry.action, entry.subject_id) == ("supporter_status_changed", jane.id)


def test_without_a_status_an_existing_status_stays(client, osdi_token):
    jane = make_supporter("ada@example.org", status="bounced")
    response = signup(client, osdi_token(), given_name="Ada")
    assert response.json["email_addresses"][0]["status"] == "bouncing"
    assert jane.status == SubscriptionStatus.BOUNCED


def test_put_changes_what_it_sends_and_keeps_the_rest(client, osdi_token):
    headers = osdi_token()
    jane = make_supporter("jane@example.org", postcode="AB1 2CD")
    response = client.put(
        f"{BASE}/people/{jane.id}",
        json={"family_name": "Roe", "custom_fields": {"member_id": "7"}},
        headers=headers,
    )
    assert response.status_code == 200, response.json
    assert response.json["given_name"] == "Jane" and response.json["family_name"] == "Roe"
    assert response.json["custom_fields"] == {"town": "Springfield", "member_id": "7"}
    assert jane.postcode == "AB1 2CD" and jane.email == "jane@example.org"
    again = client.get(f"{BASE}/people/{jane.id}", headers=headers).json
    assert again["family_name"] == "Roe"


def test_put_with_another_persons_address_is_a_conflict(client, osdi_token):
    make_supporter("taken@example.org")
    jane = make_supporter("jane@example.org")
    response = client.put(
        f"{BASE}/people/{jane.id}",
        json={"email_addresses": [{"address": "taken@example.org"}]},
        headers=osdi_token(),
    )
    assert response.status_code == 409 and "already" in response.json["error"]
    assert jane.email == "jane@example.org"


def test_unknown_people_are_404(client, osdi_token):
    headers = osdi_token()
    for method, path in (
        ("get", "people/999999"),
        ("put", "people/999999"),
        ("get", "people/999999/taggings"),
        ("get", "people/999999/outreaches"),
    ):
        response = getattr(client, method)(f"{BASE}/{path}", json={}, headers=headers)
        assert response.status_code == 404, path
        assert response.json == {"error": "Couldn't find person with id = 999999"}


def test_paths_and_methods_that_match_no_route_answer_in_osdi_shape(client, osdi_token):
    headers = osdi_token()
    for method, path, status in (
        ("get", "people/not-a-number", 404),
        ("get", "petitions", 404),
        ("delete", "people", 405),
        ("patch", "tags", 405),
    ):
        response = getattr(client, method)(f"{BASE}/{path}", headers=headers)
        assert response.status_code == status, (method, path)
        assert response.mimetype == "application/hal+json"
        assert set(response.json) == {"error"} and response.json["error"]
    refused = client.delete(f"{BASE}/people", headers=headers)
    assert "GET" in refused.headers["Allow"]
    # Outside the prefix, Clarion's own API keeps its error shape.
    assert "code" in client.get("/api/v1/nowhere").json["error"]


def test_bad_bodies_are_400_and_change_nothing(client, osdi_token):
    headers = {**osdi_token(), "Content-Type": "application/json"}
    bad = [
        b"{not json",
        b"",
        b"[1, 2]",
        b'{"person": "ada@example.org"}',
        b'{"person": {"given_name": "Ada"}}',  # no address
        b'{"person": {"email_addresses": "ada@example.org"}}',
        b'{"person": {"email_addresses": [{"address": 7}]}}',
        b'{"person": {"email_addresses": [{"address": "not-an-address"}]}}',
        b'{"person": {"email_addresses": [{"address": "a@example.org", "status": "maybe"}]}}',
        b'{"person": {"email_addresses": [{"address": "a@example.org"}], "given_name": 5}}',
        b'{"person": {"email_addresses": [{"address": "a@example.org"}], "given_name": "a\\u0000"}}',
        b'{"person": {"email_addresses": [{"address": "a@example.org"}],'
        b' "postal_addresses": [{"country": "United Kingdom"}]}}',
        b'{"person": {"email_addresses": [{"address": "a@example.org"}],'
        b' "custom_fields": {"x": {"nested": 1}}}}',
        b'{"person": {"email_addresses": [{"address": "a@example.org"}]}, "add_tags": "x"}',
        b'{"person": {"email_addresses": [{"address": "a@example.org"}]}, "add_tags": [""]}',
        b'{"person": {"email_addresses": [{"address": "a@example.org"}]}, "add_tags": [[[[[[[[['
        + b"[" * 40
        + b"]" * 49
        + b"]}",
    ]
    for raw in bad:
        response = client.post(f"{BASE}/people", data=raw, headers=headers)
        assert response.status_code == 400, (raw, response.status_code, response.data[:300])
        assert isinstance(response.json["error"], str) and response.json["error"]
    assert people_count() == 0
    long_name = client.post(
        f"{BASE}/people",
        json={
            "person": {"email_addresses": [{"address": "a@example.org"}], "given_name": "x" * 201}
        },
        headers=headers,
    )
    assert long_name.status_code == 400 and "given_name" in long_name.json["error"]


def test_hostile_strings_are_stored_as_text_and_returned_escaped(client, osdi_token):
    name = "<script>alert('x')</script> Robert'); DROP TABLE supporters;--"
    response = signup(client, osdi_token(), given_name=name, custom_fields={"ünï": "💥\u202e"})
    assert response.status_code == 201
    assert b"<script>" not in response.data  # JSON-escaped, never raw markup
    assert response.json["given_name"] == name
    assert response.json["custom_fields"] == {"ünï": "💥\u202e"}


# --- collections, paging and filters ---------------------------------------------------------


def test_people_pages_cover_everyone_once_and_past_the_end_is_empty(client, osdi_token):
    headers = osdi_token("analyst")
    ids = make_supporters(60)
    seen, page = [], 1
    while True:
        body = client.get(f"{BASE}/people?page={page}&per_page=100", headers=headers).json
        items = body["_embedded"]["osdi:people"]
        if not items:
            break
        assert body["per_page"] == 25 and body["total_records"] == 60 and body["total_pages"] == 3
        seen += [int(p["identifiers"][0].split(":")[1]) for p in items]
        page += 1
    assert seen == ids and page == 4
    assert "next" not in body["_links"] and body["page"] == 4
    second = client.get(f"{BASE}/people?page=2", headers=headers).json["_links"]
    assert second["next"]["href"].endswith("people?page=3&per_page=25")
    assert second["previous"]["href"].endswith("people?page=1&per_page=25")
    huge = client.get(f"{BASE}/people?page=9223372036854775807", headers=headers)
    assert huge.status_code == 200 and huge.json["_embedded"]["osdi:people"] == []


def test_bad_paging_is_400(client, osdi_token):
    headers = osdi_token("analyst")
    for query in ("page=0", "page=-1", "page=abc", "per_page=0", "page=1.5", "page=²"):
        response = client.get(f"{BASE}/people?{query}", headers=headers)
        assert response.status_code == 400, query
        assert "whole number" in response.json["error"]


def test_people_filters(client, osdi_token, db_session):
    headers = osdi_token("analyst")
    make_supporters(3)
    ada = make_supporter("Ada@Example.org")
    db_session.execute(
        Supporter.__table__.update().values(updated_at=func.now() - func.make_interval(0, 0, 0, 3))
    )
    ada.first_name = "Ada"  # a recent change
    db_session.flush()

    def emails(odata):
        body = client.get(f"{BASE}/people", query_string={"filter": odata}, headers=headers).json
        return [p["email_addresses"][0]["address"] for p in body["_embedded"]["osdi:people"]]

    assert emails("email_address eq 'ADA@example.org'") == ["ada@example.org"]
    yesterday = (db_session.scalar(select(func.now())).date()).isoformat()
    assert emails(f"modified_date gt '{yesterday}'") == ["ada@example.org"]
    assert len(emails(f"modified_date lt '{yesterday}'")) == 3
    assert emails(f"modified_date gt '{yesterday}' and email_address eq 'nobody@x.org'") == []
    for bad in ("name eq 'x'", "modified_date eq '2024-01-01'", "modified_date gt 'soon'", "1=1"):
        response = client.get(f"{BASE}/people", query_string={"filter": bad}, headers=headers)
        assert response.status_code == 400, bad
        assert "Supported:" in response.json["error"] or "not a date" in response.json["error"]


# --- tags and taggings -----------------------------------------------------------------------


def test_tags_are_unique_ignoring_case(client, osdi_token):
    headers = osdi_token()
    first = client.post(f"{BASE}/tags", json={"name": "Volunteers"}, headers=headers)
    assert first.status_code == 201
    again = client.post(f"{BASE}/tags", json={"name": " volunteers "}, headers=headers)
    assert again.status_code == 200 and again.json["identifiers"] == first.json["identifiers"]
    assert again.json["name"] == "Volunteers"
    for bad in ({}, {"name": ""}, {"name": 5}, {"name": "x" * 101}):
        assert client.post(f"{BASE}/tags", json=bad, headers=headers).status_code == 400


def test_taggings_create_list_get_and_delete(client, osdi_token):
    headers = osdi_token()
    jane = make_supporter()
    tag_id = (
        client.post(f"{BASE}/tags", json={"name": "donor"}, headers=headers)
        .json["identifiers"][1]
        .split(":")[1]
    )
    link = {
        "_links": {"osdi:person": {"href": f"https://actionnetwork.org/api/v2/people/{jane.id}"}}
    }
    created = client.post(f"{BASE}/tags/{tag_id}/taggings", json=link, headers=headers)
    assert created.status_code == 200, created.json
    tagging_id = created.json["identifiers"][1].split(":")[1]
    assert tagging_id == f"{tag_id}-{jane.id}"
    assert created.json["_links"]["osdi:person"]["href"].endswith(f"/people/{jane.id}")
    listed = client.get(f"{BASE}/tags/{tag_id}/taggings", headers=headers).json
    assert [t["identifiers"] for t in listed["_embedded"]["osdi:taggings"]] == [
        created.json["identifiers"]
    ]
    mine = client.get(f"{BASE}/people/{jane.id}/taggings", headers=headers).json
    assert mine["total_records"] == 1
    path = f"{BASE}/tags/{tag_id}/taggings/{tagging_id}"
    assert client.get(path, headers=headers).status_code == 200
    assert client.delete(path, headers=headers).status_code == 200
    assert jane.tags == []
    assert client.get(path, headers=headers).status_code == 404
    assert client.delete(path, headers=headers).status_code == 404
    for bad in ({}, {"_links": {"osdi:person": {"href": "https://x/people/abc"}}}, [1]):
        response = client.post(f"{BASE}/tags/{tag_id}/taggings", json=bad, headers=headers)
        assert response.status_code == 400, bad
    missing = {"_links": {"osdi:person": {"href": "https://x/people/99999999"}}}
    assert (
        client.post(f"{BASE}/tags/{tag_id}/taggings", json=missing, headers=headers).status_code
        == 404
    )
    assert (
        client.get(f"{BASE}/tags/{tag_id}/taggings/1-{jane.id}x", headers=headers).status_code
        == 404
    )
    assert client.get(f"{BASE}/tags/99999/taggings", headers=headers).status_code == 404


def test_tag_collection_pages(client, osdi_token):
    headers = osdi_token("analyst")
    db.session.add_all([Tag(name=f"tag-{n:02d}") for n in range(30)])
    db.session.flush()
    first = client.get(f"{BASE}/tags", headers=headers).json
    second = client.get(f"{BASE}/tags?page=2", headers=headers).json
    names = [t["name"] for t in first["_embedded"]["osdi:tags"] + second["_embedded"]["osdi:tags"]]
    assert names == [f"tag-{n:02d}" for n in range(30)] and first["total_pages"] == 2


# --- lists -----------------------------------------------------------------------------------


def test_lists_and_their_items(client, osdi_token):
    headers = osdi_token("analyst")
    audience = make_list("Newsletter")
    ids = make_supporters(3, mailing_list=audience)
    lists = client.get(f"{BASE}/lists", headers=headers).json["_embedded"]["osdi:lists"]
    assert [(entry["name"], entry["total_items"]) for entry in lists] == [("Newsletter", 3)]
    items = client.get(f"{BASE}/lists/{audience.id}/items", headers=headers).json
    assert [i["_links"]["osdi:person"]["href"].rsplit("/", 1)[1] for i in
            items["_embedded"]["osdi:items"]] == [str(i) for i in ids]  # fmt: skip
    one = client.get(f"{BASE}/lists/{audience.id}/items/{ids[0]}", headers=headers)
    assert one.status_code == 200 and one.json["item_type"] == "osdi:person"
    assert client.get(f"{BASE}/lists/{audience.id}/items/99999", headers=headers).status_code == 404
    assert client.get(f"{BASE}/lists/99999", headers=headers).status_code == 404


# --- advocacy campaigns, outreaches, messages ------------------------------------------------


def test_advocacy_campaigns_and_outreaches(client, osdi_token, letters_sent):
    campaign, supporter, action = letters_sent
    headers = osdi_token("analyst")
    body = client.get(f"{BASE}/advocacy_campaigns", headers=headers).json
    (found,) = body["_embedded"]["osdi:advocacy_campaigns"]
    assert found["title"] == campaign.title and found["total_outreaches"] == 1
    assert [t["given_name"] for t in found["targets"]] == ["Todd Lyons", "Kristi Noem"]
    assert found["identifiers"] == [f"clarion:{campaign.id}", f"action_network:{campaign.id}"]
    path = f"{BASE}/advocacy_campaigns/{campaign.id}/outreaches"
    (outreach,) = client.get(path, headers=headers).json["_embedded"]["osdi:outreaches"]
    assert outreach["subject"] == "Release Cesar and Norelia"
    assert [t["action_network:letter_status"] for t in outreach["targets"]] == ["sent", "held"]
    assert outreach["_links"]["osdi:person"]["href"].endswith(f"/people/{supporter.id}")
    mine = client.get(f"{BASE}/people/{supporter.id}/outreaches", headers=headers).json
    assert mine["_embedded"]["osdi:outreaches"][0]["identifiers"] == outreach["identifiers"]
    assert client.get(f"{path}/{action.id}", headers=headers).status_code == 200
    assert client.get(f"{path}/999999", headers=headers).status_code == 404
    assert client.get(f"{BASE}/advocacy_campaigns/999999", headers=headers).status_code == 404


def test_petitions_are_not_advocacy_campaigns(client, osdi_token):
    from tests.factories import make_campaign

    petition = make_campaign(slug="sign", kind="petition")
    headers = osdi_token("analyst")
    body = client.get(f"{BASE}/advocacy_campaigns", headers=headers).json
    assert body["total_records"] == 0
    assert (
        client.get(f"{BASE}/advocacy_campaigns/{petition.id}", headers=headers).status_code == 404
    )


def test_messages_carry_people_only_statistics(client, osdi_token, mailing_with_figures):
    headers = osdi_token("analyst")
    body = client.get(f"{BASE}/messages", headers=headers).json
    (message,) = body["_embedded"]["osdi:messages"]
    assert message["subject"] == mailing_with_figures.subject
    assert message["statistics"] == {
        "sent": 3, "delivered": 2, "opened": 2, "clicked": 1, "actions": 1,
        "unsubscribed": 1, "bounced": 1, "spam_reports": 1,
    }  # fmt: skip
    one = client.get(f"{BASE}/messages/{mailing_with_figures.id}", headers=headers).json
    assert one["statistics"] == message["statistics"]
    assert client.get(f"{BASE}/messages/999999", headers=headers).status_code == 404
