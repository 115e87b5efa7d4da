"""What API callers do lands in the same audit log as the staff app's actions."""

from __future__ import annotations

import io

from app.auth.audit import recent_entries
from tests.factories import make_list, make_mailing, make_supporter, make_supporters


def actions_logged() -> list[tuple[str, str, int | None]]:
    return [(e.action, e.actor, e.subject_id) for e in reversed(recent_entries(limit=20))]


def test_sending_and_controlling_a_mailing_are_audited(client, api_token, redis_conn):
    headers = api_token("campaigner")
    audience = make_list()
    make_supporters(2, mailing_list=audience)
    mailing = make_mailing(audience)
    base = f"/api/v1/mailings/{mailing.id}"
    assert client.post(f"{base}/pause", headers=headers).status_code == 409  # refused: no entry
    for step in ("send", "pause", "resume", "cancel"):
        response = client.post(
            f"{base}/{step}", json={} if step == "send" else None, headers=headers
        )
        assert response.status_code in (200, 202), (step, response.json)
    actor = "token:test-campaigner"
    assert actions_logged() == [
        ("mailing_sent", actor, mailing.id),
        ("mailing_paused", actor, mailing.id),
        ("mailing_resumed", actor, mailing.id),
        ("mailing_cancelled", actor, mailing.id),
    ]


def test_gdpr_export_and_erase_are_audited_without_the_address(client, api_token):
    headers = api_token("admin")
    supporter = make_supporter("erase.me@example.org")
    supporter_id = supporter.id
    assert (
        client.get(f"/api/v1/supporters/{supporter_id}/export", headers=headers).status_code == 200
    )
    assert client.delete(f"/api/v1/supporters/{supporter_id}", headers=headers).status_code == 204
    assert actions_logged() == [
        ("supporter_exported", "token:test-admin", supporter_id),
        ("supporter_erased", "token:test-admin", supporter_id),
    ]
    assert all("erase.me" not in e.detail for e in recent_entries())


def test_an_api_import_is_audited(client, api_token, redis_conn):
    response = client.post(
        "/api/v1/imports",
        data={"file": (io.BytesIO(b"email\nnew@example.org\n"), "members.csv")},
        headers=api_token("campaigner"),
        content_type="multipart/form-data",
    )
    assert response.status_code == 202
    [entry] = recent_entries()
    assert (entry.action, entry.subject_id) == ("import_started", response.json["id"])
    assert "members.csv" in entry.detail
