"""POST /api/v1/{mailings,supporters}/<id>/revoke-links and `clarion links revoke`."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

from app.extensions import db
from app.tracking.revocations import LinkRevocation
from tests.factories import make_mailing, make_supporter


@pytest.fixture
def mailing_id():
    mailing = make_mailing()
    db.session.commit()
    return mailing.id


@pytest.fixture
def supporter_id():
    supporter = make_supporter()
    db.session.commit()
    return supporter.id


def stored():
    return db.session.scalars(select(LinkRevocation).order_by(LinkRevocation.id)).all()


def test_campaigner_revokes_a_mailing_and_gets_the_record(client, api_token, mailing_id):
    response = client.post(
        f"/api/v1/mailings/{mailing_id}/revoke-links",
        json={"reason": "forwarded to a public list"},
        headers=api_token("campaigner"),
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body["mailing_id"] == mailing_id and body["supporter_id"] is None
    assert body["revoked_by"] == "token:test-campaigner"
    assert body["reason"] == "forwarded to a public list"
    assert datetime.fromisoformat(body["revoked_at"]).tzinfo is not None
    [row] = stored()
    assert row.id == body["id"]


def test_admin_revokes_a_supporter_without_a_body(client, api_token, supporter_id):
    response = client.post(
        f"/api/v1/supporters/{supporter_id}/revoke-links", headers=api_token("admin")
    )
    assert response.status_code == 201
    assert response.get_json()["supporter_id"] == supporter_id
    assert response.get_json()["reason"] is None


@pytest.mark.parametrize("kind", ["mailings", "supporters"])
def test_analysts_and_strangers_cannot_revoke(client, api_token, mailing_id, supporter_id, kind):
    target = mailing_id if kind == "mailings" else supporter_id
    url = f"/api/v1/{kind}/{target}/revoke-links"
    forbidden = client.post(url, json={}, headers=api_token("analyst"))
    assert forbidden.status_code == 403
    assert forbidden.get_json()["error"]["code"] == "forbidden"
    anonymous = client.post(url, json={})
    assert anonymous.status_code == 401
    assert anonymous.get_json()["error"]["code"] == "unauthorized"
    assert stored() == []


@pytest.mark.parametrize("kind", ["mailings", "supporters"])
def test_unknown_id_is_404_in_the_api_error_shape(client, api_token, kind):
    response = client.post(
        f"/api/v1/{kind}/987654/revoke-links", json={}, headers=api_token("campaigner")
    )
    assert response.status_code == 404
    assert response.get_json() == {
        "error": {
            "code": "not_found",
            "message": f"No {kind[:-1]} with id 987654.",
            "details": {},
        }
    }
    assert stored() == []


def test_bad_bodies_are_refused(client, api_token, mailing_id):
    url = f"/api/v1/mailings/{mailing_id}/revoke-links"
    headers = api_token("campaigner")
    too_long = client.post(url, json={"reason": "x" * 501}, headers=headers)
    assert too_long.status_code == 422
    assert "reason" in too_long.get_json()["error"]["details"]
    unknown = client.post(url, json={"why": "typo"}, headers=headers)
    assert unknown.status_code == 422
    not_json = client.post(url, data="reason=x", headers=headers)
    assert not_json.status_code == 415
    assert stored() == []


def test_cli_revokes_a_mailing_or_a_supporter(app, mailing_id, supporter_id):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["links", "revoke", "--mailing", str(mailing_id), "--reason", "x"])
    assert result.exit_code == 0, result.output
    assert f"Revoked every link of mailing {mailing_id}" in result.output
    result = runner.invoke(args=["links", "revoke", "--supporter", str(supporter_id)])
    assert result.exit_code == 0, result.output
    first, second = stored()
    assert (first.mailing_id, first.reason) == (mailing_id, "x")
    assert second.supporter_id == supporter_id and second.revoked_by.startswith("cli")


def test_cli_refuses_unclear_or_unknown_targets(app, mailing_id, supporter_id):
    runner = app.test_cli_runner()
    neither = runner.invoke(args=["links", "revoke"])
    assert neither.exit_code == 2 and "exactly one of" in neither.output
    both = runner.invoke(
        args=["links", "revoke", "--mailing", str(mailing_id), "--supporter", str(supporter_id)]
    )
    assert both.exit_code == 2
    unknown = runner.invoke(args=["links", "revoke", "--mailing", "987654"])
    assert unknown.exit_code == 1 and "No mailing with id 987654." in unknown.output
    assert stored() == []
