"""Lists, tags, segments and imports through the API."""

from __future__ import annotations

import io

import pytest

from app.extensions import db
from app.mailings.models import Mailing
from app.supporters.models import ImportRejection, ImportStatus, Supporter, SupporterImport
from tests.api.test_api_base import assert_error


@pytest.fixture
def headers(api_token):
    return api_token("campaigner")


def add_supporter(email: str, status="subscribed", country=None) -> int:
    supporter = Supporter(email=email, status=status, country=country, custom_fields={})
    db.session.add(supporter)
    db.session.flush()
    return supporter.id


def test_list_crud_and_members(client, headers):
    created = client.post(
        "/api/v1/lists", json={"name": " Newsletter ", "description": "Monthly"}, headers=headers
    )
    assert created.status_code == 201
    list_id = created.get_json()["id"]
    assert created.get_json()["name"] == "Newsletter"
    a, b = add_supporter("a@example.org"), add_supporter("b@example.org", status="unsubscribed")

    result = client.post(
        f"/api/v1/lists/{list_id}/members",
        json={"supporter_ids": [a, 999999], "emails": ["B@example.org", "nobody@example.org"]},
        headers=headers,
    ).get_json()
    assert result == {
        "added": 2,
        "already_members": 0,
        "not_found": {"supporter_ids": [999999], "emails": ["nobody@example.org"]},
    }
    again = client.post(
        f"/api/v1/lists/{list_id}/members", json={"supporter_ids": [a]}, headers=headers
    )
    assert again.get_json()["already_members"] == 1
    assert_error(client.post(f"/api/v1/lists/{list_id}/members", json={}, headers=headers), 422)

    one = client.get(f"/api/v1/lists/{list_id}", headers=headers).get_json()
    assert (one["member_count"], one["subscribed_count"]) == (2, 1)
    page = client.get("/api/v1/lists", headers=headers).get_json()
    assert page["items"][0]["member_count"] == 2 and page["pagination"]["total"] == 1

    assert client.delete(f"/api/v1/lists/{list_id}/members/{a}", headers=headers).status_code == 204
    assert_error(client.delete(f"/api/v1/lists/{list_id}/members/{a}", headers=headers), 404)

    renamed = client.patch(f"/api/v1/lists/{list_id}", json={"name": "News"}, headers=headers)
    assert renamed.get_json()["name"] == "News" and renamed.get_json()["member_count"] == 1
    client.post("/api/v1/lists", json={"name": "Other"}, headers=headers)
    assert_error(
        client.patch(f"/api/v1/lists/{list_id}", json={"name": "Other"}, headers=headers), 409
    )

    assert client.delete(f"/api/v1/lists/{list_id}", headers=headers).status_code == 204
    assert_error(client.get(f"/api/v1/lists/{list_id}", headers=headers), 404)
    assert db.session.get(Supporter, b) is not None


def test_tags(client, headers):
    created = client.post("/api/v1/tags", json={"name": "donor"}, headers=headers)
    assert created.status_code == 201
    assert_error(
        client.post("/api/v1/tags", json={"name": "donor"}, headers=headers), 409, "duplicate_name"
    )
    assert_error(client.post("/api/v1/tags", json={"name": ""}, headers=headers), 422)
    supporter = add_supporter("t@example.org")
    client.post(f"/api/v1/supporters/{supporter}/tags", json={"tags": ["donor"]}, headers=headers)
    tags = client.get("/api/v1/tags", headers=headers).get_json()["items"]
    assert [(t["name"], t["supporter_count"]) for t in tags] == [("donor", 1)]
    assert client.delete(f"/api/v1/tags/{tags[0]['id']}", headers=headers).status_code == 204
    assert client.get(f"/api/v1/supporters/{supporter}", headers=headers).get_json()["tags"] == []


def test_segments_crud_and_counts(client, headers):
    list_id = client.post("/api/v1/lists", json={"name": "L"}, headers=headers).get_json()["id"]
    a = add_supporter("a@example.org", country="GB")
    add_supporter("b@example.org", country="FR")
    add_supporter("c@example.org", country="GB", status="bounced")
    client.post(f"/api/v1/lists/{list_id}/members", json={"supporter_ids": [a]}, headers=headers)

    definition = {"conditions": [{"field": "country", "op": "eq", "value": "gb"}]}
    created = client.post(
        "/api/v1/segments", json={"name": "UK", "definition": definition}, headers=headers
    )
    assert created.status_code == 201
    segment = created.get_json()
    assert segment["definition"]["statuses"] == ["subscribed"]
    count = client.get(f"/api/v1/segments/{segment['id']}/count", headers=headers).get_json()
    assert count == {"count": 1}

    unsaved = {"definition": {"statuses": ["subscribed", "bounced"], **definition}}
    assert client.post("/api/v1/segments/count", json=unsaved, headers=headers).get_json() == {
        "count": 2
    }
    in_list = {"definition": {"include_lists": [list_id]}}
    assert client.post("/api/v1/segments/count", json=in_list, headers=headers).get_json() == {
        "count": 1
    }

    patched = client.patch(
        f"/api/v1/segments/{segment['id']}",
        json={"definition": {"exclude_lists": [list_id]}},
        headers=headers,
    )
    assert patched.status_code == 200
    assert client.get(f"/api/v1/segments/{segment['id']}/count", headers=headers).get_json() == {
        "count": 1
    }
    assert client.get("/api/v1/segments", headers=headers).get_json()["pagination"]["total"] == 1


def test_segment_errors(client, headers):
    duplicate = {"name": "S", "definition": {}}
    assert client.post("/api/v1/segments", json=duplicate, headers=headers).status_code == 201
    assert_error(
        client.post("/api/v1/segments", json=duplicate, headers=headers), 409, "duplicate_name"
    )
    unknown_key = {"name": "T", "definition": {"include_list": [1]}}
    error = assert_error(client.post("/api/v1/segments", json=unknown_key, headers=headers), 422)
    assert "definition" in error["details"]
    unknown_id = {"name": "T", "definition": {"include_lists": [999999]}}
    error = assert_error(client.post("/api/v1/segments", json=unknown_id, headers=headers), 422)
    assert "include_lists" in error["details"]
    bad_condition = {"definition": {"conditions": [{"field": "x", "op": "eq", "value": "1"}]}}
    assert_error(client.post("/api/v1/segments/count", json=bad_condition, headers=headers), 422)


def test_segment_used_by_an_unsent_mailing_cannot_be_deleted(client, headers):
    segment_id = client.post(
        "/api/v1/segments", json={"name": "S", "definition": {}}, headers=headers
    ).get_json()["id"]
    mailing = Mailing(name="M", subject="S", audience={"segments": [segment_id]})
    db.session.add(mailing)
    db.session.flush()
    error = assert_error(client.delete(f"/api/v1/segments/{segment_id}", headers=headers), 409)
    assert error["details"] == {"mailing_ids": [mailing.id]}
    mailing.audience = {}
    db.session.flush()
    assert client.delete(f"/api/v1/segments/{segment_id}", headers=headers).status_code == 204


def upload(client, headers, content: bytes, filename="people.csv", **form):
    data = {"file": (io.BytesIO(content), filename), **form}
    return client.post(
        "/api/v1/imports", data=data, headers=headers, content_type="multipart/form-data"
    )


@pytest.mark.parametrize(
    ("content", "filename"),
    [
        (b"", "people.csv"),
        (b"  \n", "people.csv"),
        (b"email\na@example.org\n", "people.xlsx"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "people.csv"),
        (b"email\n\x81\x8d\x90\x9d\xff\x00\x01", "people.csv"),
    ],
    ids=["empty", "blank", "not-csv-name", "binary", "no-known-encoding"],
)
def test_unusable_uploads_are_refused(client, headers, content, filename):
    assert_error(upload(client, headers, content, filename), 422, "invalid_import")


def test_upload_needs_a_file(client, headers):
    response = client.post("/api/v1/imports", data={"list": "x"}, headers=headers)
    assert "file" in assert_error(response, 422)["details"]


def test_start_import_and_read_its_status(client, headers, redis_conn):
    response = upload(
        client, headers, b"email\na@example.org\n", list="Petition", tags="x, y", source="web"
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    body = response.get_json()
    assert body["status"] == "queued"
    assert body["status_url"] == f"/api/v1/imports/{body['id']}"
    job = db.session.get(SupporterImport, body["id"])
    assert (job.list_name, job.tag_names, job.source) == ("Petition", ["x", "y"], "web")
    assert job.created_by == "token:test-campaigner"


def test_import_status_and_rejections(client, headers):
    job = SupporterImport(
        filename="p.csv",
        stored_path="/nowhere/p.csv",
        status=ImportStatus.RUNNING,
        total_rows=4,
        processed_rows=1,
        rejected_count=1,
    )
    db.session.add(job)
    db.session.flush()
    db.session.add(
        ImportRejection(import_id=job.id, row_number=3, reason="invalid email", raw="nope")
    )
    db.session.flush()
    status = client.get(f"/api/v1/imports/{job.id}", headers=headers).get_json()
    assert status["progress"] == 25.0
    assert status["counts"] == {"created": 0, "updated": 0, "unchanged": 0, "rejected": 1}
    errors = client.get(status["errors_url"], headers=headers)
    assert errors.status_code == 200 and errors.mimetype == "text/csv"
    assert errors.get_data(as_text=True).splitlines() == ["row,reason,raw", "3,invalid email,nope"]
    assert_error(client.get("/api/v1/imports/999999/errors.csv", headers=headers), 404)
