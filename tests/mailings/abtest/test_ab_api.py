"""A/B tests through the API: set up, refuse, read figures, pick by hand, and what stays true."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.links.tokens import LinkClaims
from app.mailings.delivery.sending import send_batch
from app.mailings.models import AbTest, Delivery, DeliveryStatus, Mailing, MailingVariant
from app.tracking.machine import Verdict
from app.tracking.models import EventKind
from app.tracking.services import record_event
from tests.factories import make_list, make_mailing, make_supporters

PERSON = Verdict(machine=False, reason="", ua_class="browser")
TEST = {
    "test_fraction": 0.5,
    "wait_minutes": 30,
    "metric": "clicks",
    "selection": "manual",
    "max_complaint_rate": 0.003,
    "variants": [{}, {"subject": "Before Friday: write to the Minister", "from_name": "Maya"}],
}


@pytest.fixture
def campaigner(api_token):
    return api_token("campaigner")


@pytest.fixture
def draft():
    audience = make_list()
    make_supporters(40, mailing_list=audience)
    mailing = make_mailing(audience)
    db.session.commit()
    return mailing


def _url(mailing, tail=""):
    return f"/api/v1/mailings/{mailing.id}/ab-test{tail}"


def test_set_up_read_replace_and_remove(client, campaigner, api_token, draft):
    assert client.get(_url(draft), headers=campaigner).status_code == 404
    response = client.put(_url(draft), json=TEST, headers=campaigner)
    assert response.status_code == 200, response.json
    body = response.json
    assert body["state"] == "draft" and body["metric"] == "clicks"
    assert [v["label"] for v in body["variants"]] == ["A", "B"]
    assert body["variants"][1]["subject"] == "Before Friday: write to the Minister"
    assert body["variants"][0]["subject"] == draft.subject  # A is the mailing as written
    assert body["variant_settings"][1]["from_name"] == "Maya"
    analyst = api_token("analyst")
    assert client.get(_url(draft), headers=analyst).json == body

    three = TEST | {"variants": [{}, {"subject": "B"}, {"preheader": "Only days left"}]}
    assert client.put(_url(draft), json=three, headers=campaigner).status_code == 200
    assert db.session.scalar(select(func.count()).where(MailingVariant.mailing_id == draft.id)) == 3
    assert client.delete(_url(draft), headers=campaigner).status_code == 204
    assert client.get(_url(draft), headers=campaigner).status_code == 404
    assert db.session.get(AbTest, draft.id) is None


def test_analyst_reads_but_cannot_change(client, api_token, campaigner, draft):
    analyst = api_token("analyst")
    assert client.put(_url(draft), json=TEST, headers=analyst).status_code == 403
    client.put(_url(draft), json=TEST, headers=campaigner)
    assert client.delete(_url(draft), headers=analyst).status_code == 403
    assert (
        client.post(_url(draft, "/winner"), json={"variant": "A"}, headers=analyst).status_code
        == 403
    )
    assert client.put(_url(draft), json=TEST).status_code == 401


@pytest.mark.parametrize(
    "change, field",
    [
        ({"variants": [{}]}, "variants"),
        ({"variants": [{}, {}]}, "variants"),
        ({"variants": [{}, {"subject": "{% include 'x' %}"}]}, "variants"),
        ({"variants": [{}, {"subject": 5}]}, "variants"),
        ({"variants": "AB"}, "variants"),
        ({"test_fraction": 1.5}, "test_fraction"),
        ({"test_fraction": "half"}, "test_fraction"),
        ({"wait_minutes": 10**9}, "wait_minutes"),
        ({"selection": "coin"}, "selection"),
        ({"max_unsubscribe_rate": 2}, "max_unsubscribe_rate"),
        ({"min_confidence": 0.2}, "min_confidence"),
    ],
)
def test_bad_input_is_a_422_with_the_field_and_changes_nothing(
    client, campaigner, draft, change, field
):
    client.put(_url(draft), json=TEST, headers=campaigner)
    before = client.get(_url(draft), headers=campaigner).json
    response = client.put(_url(draft), json=TEST | change, headers=campaigner)
    assert response.status_code == 422
    details = response.json["error"]["details"]
    assert field in str(details), details
    assert client.get(_url(draft), headers=campaigner).json == before


def test_not_json_and_unknown_mailing(client, campaigner):
    response = client.put(
        "/api/v1/mailings/999999/ab-test",
        data="{",
        headers=campaigner | {"Content-Type": "application/json"},
    )
    assert response.status_code in (400, 422)
    assert (
        client.put("/api/v1/mailings/999999/ab-test", json=TEST, headers=campaigner).status_code
        == 404
    )


def test_preview_and_test_send_a_variant(client, campaigner, draft, smtp_sink, app):
    client.put(_url(draft), json=TEST, headers=campaigner)
    preview = client.get(f"/api/v1/mailings/{draft.id}/preview?variant=B", headers=campaigner)
    assert preview.json["subject"] == "Before Friday: write to the Minister"
    assert (
        client.get(f"/api/v1/mailings/{draft.id}/preview?variant=C", headers=campaigner).status_code
        == 404
    )
    app.config["CLARION"] = replace(app.config["CLARION"], smtp_url=smtp_sink.url)
    sent = client.post(
        f"/api/v1/mailings/{draft.id}/test",
        json={"to": ["maya@example.org"], "variant": "B"},
        headers=campaigner,
    )
    assert sent.json["sent"] == 1
    message = smtp_sink.messages[0].message
    assert message["Subject"] == "[TEST] Before Friday: write to the Minister"
    assert message["From"].startswith("Maya <")


def test_send_then_pick_by_hand_through_the_api(
    client, campaigner, draft, smtp_sink, app, redis_conn
):
    settings = replace(app.config["CLARION"], smtp_url=smtp_sink.url)
    app.config["CLARION"] = settings
    client.put(_url(draft), json=TEST, headers=campaigner)
    early = client.post(_url(draft, "/winner"), json={"variant": "B"}, headers=campaigner)
    assert early.status_code == 409
    assert (
        client.post(f"/api/v1/mailings/{draft.id}/send", json={}, headers=campaigner).status_code
        == 202
    )
    assert client.put(_url(draft), json=TEST, headers=campaigner).status_code == 409

    from app.mailings.delivery.launch import start_mailing

    assert start_mailing(draft.id, settings)
    send_batch(draft.id, 0, settings)
    tested = db.session.execute(
        select(Delivery.supporter_id, MailingVariant.position)
        .join(MailingVariant, MailingVariant.id == Delivery.variant_id)
        .where(Delivery.mailing_id == draft.id)
    ).all()
    assert len(tested) == 20
    for supporter_id, position in tested:
        if position == 1:
            record_event(EventKind.CLICK, LinkClaims(draft.id, supporter_id), PERSON)
    db.session.commit()

    body = client.get(_url(draft), headers=campaigner).json
    assert body["state"] == "testing"
    b = body["variants"][1]
    assert b["sent"] == 10 and b["human_clicks"] == 10 and b["rate"] == 1.0
    assert body["leader"] == "B" and body["confidence"] > 0.99

    bad = client.post(_url(draft, "/winner"), json={"variant": "Q"}, headers=campaigner)
    assert bad.status_code == 409 and "No variant" in bad.json["error"]["message"]
    picked = client.post(_url(draft, "/winner"), json={"variant": "B"}, headers=campaigner)
    assert picked.status_code == 200, picked.json
    assert picked.json["winner"] == "B" and picked.json["state"] == "decided"
    assert picked.json["decided_by"].startswith("token:")
    again = client.post(_url(draft, "/winner"), json={"variant": "A"}, headers=campaigner)
    assert again.status_code == 409
    assert (
        db.session.scalar(
            select(func.count()).where(
                Delivery.mailing_id == draft.id, Delivery.status == DeliveryStatus.HELD
            )
        )
        == 0
    )
    from app.auth.models import AuditEntry

    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "ab_winner_picked"))
    assert entry is not None and "variant B picked by token:" in entry.detail
    assert db.session.get(Mailing, draft.id).ab_test.decision["leader"] == "B"


def test_the_deliveries_csv_says_who_got_which_variant(
    client, campaigner, api_token, draft, smtp_sink, app, redis_conn
):
    import csv
    import io

    from app.mailings.delivery.launch import start_mailing

    settings = replace(app.config["CLARION"], smtp_url=smtp_sink.url)
    app.config["CLARION"] = settings
    client.put(_url(draft), json=TEST, headers=campaigner)
    client.post(f"/api/v1/mailings/{draft.id}/send", json={}, headers=campaigner)
    assert start_mailing(draft.id, settings)
    send_batch(draft.id, 0, settings)
    client.post(_url(draft, "/winner"), json={"variant": "B"}, headers=campaigner)
    response = client.get(
        f"/api/v1/mailings/{draft.id}/report/deliveries.csv", headers=api_token("analyst")
    )
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 40
    groups = {(row["variant"], row["ab_group"]) for row in rows}
    assert groups == {("A", "test"), ("B", "test"), ("B", "rest")}
    assert sum(row["ab_group"] == "test" for row in rows) == 20
