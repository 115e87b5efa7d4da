"""GDPR access and erasure across every domain, driven from the outside (API, pages, CLI)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from sqlalchemy import select, text

from app.campaigns.letters import deliver_letter
from app.campaigns.models import Action, Letter, LetterStatus
from app.campaigns.privacy import ERASED_LETTER, WITHDRAWN
from app.extensions import db
from app.links.tokens import Purpose, TokenService
from app.mailings.models import BounceEvent, BounceKind, Delivery
from app.supporters.models import ImportRejection, Supporter, SupporterImport
from tests.campaigns.conftest import form_of
from tests.factories import make_campaign, make_delivery, make_sent_mailing, make_supporter
from tests.tracking.conftest import (  # noqa: F401 (autouse fixtures: keep the event buffer ours)
    _empty_event_buffer,
    _flush_only_when_asked,
    drain,
)

BROWSER = {
    "User-Agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Safari/605.1.15"
}
TARGETS = [
    {"name": "Todd Lyons", "salutation": "Dear Acting Director Lyons", "email": "t@ice.example"},
    {"name": "Ana Ruiz", "salutation": "Dear Ms Ruiz", "email": "ana@gov.example"},
    {"name": "Kristi Noem", "salutation": "Dear Secretary Noem", "postal_address": "Washington"},
]
# What only Jane's rows hold: none of it may be anywhere in the database after her erasure.
JANES_DATA = ("jane@example.org", "Jane", "Doe", "Springfield", "nurse")


@pytest.fixture
def admin(api_token):
    return api_token("admin")


@pytest.fixture
def world(client, settings, smtp_sink):
    """Jane and Bob got a mailing, opened it, clicked, and wrote through the action page."""
    tokens = TokenService(settings.secret_keys)
    campaign = make_campaign(targets=TARGETS)
    mailing = make_sent_mailing("Write for the parents")
    mailing.campaign_id = campaign.id
    jane = make_supporter("jane@example.org")
    bob = make_supporter("bob@example.net", first_name="Bob", last_name="Ng", custom_fields={})
    for person in (jane, bob):
        make_delivery(mailing, person)
    ids = {"campaign": campaign.id, "mailing": mailing.id, "jane": jane.id, "bob": bob.id}
    db.session.commit()

    def link(purpose, supporter_id, suffix=""):
        prefix = {Purpose.OPEN: "o", Purpose.CLICK: "c", Purpose.ACTION: "a"}[purpose]
        return f"/{prefix}/{tokens.dumps(purpose, ids['mailing'], supporter_id)}{suffix}"

    for who, words in (("jane", "I, a nurse, urge you"), ("bob", "I urge you")):
        client.get(link(Purpose.OPEN, ids[who], ".gif"), headers=BROWSER)
        client.get(link(Purpose.CLICK, ids[who], "/1"), headers=BROWSER)
        path = link(Purpose.ACTION, ids[who])
        form = form_of(client.get(path).get_data(as_text=True))
        form["letter"] = form["letter"].replace("I urge you", words)
        assert client.post(path, data=form, headers=BROWSER).status_code == 200
    drain()
    # The first target's letters are sent; the second's stay queued; the third is held for post.
    sink_settings = replace(settings, smtp_url=smtp_sink.url)
    for letter in db.session.scalars(select(Letter).where(Letter.target_id == _target(0))):
        assert deliver_letter(letter.id, sink_settings).status == "sent"
    # Free text that quotes Jane: a delivery error, a bounce, a rejected CSV row, a letter error.
    delivery = db.session.scalar(select(Delivery).where(Delivery.supporter_id == ids["jane"]))
    delivery.last_error = "452 <jane@example.org> mailbox full"
    db.session.add(
        BounceEvent(
            kind=BounceKind.SOFT,
            source="webhook",
            mailing_id=ids["mailing"],
            supporter_id=ids["jane"],
            delivery_id=delivery.id,
            detail="jane@example.org: over quota",
            payload={"recipient": "jane@example.org"},
        )
    )
    upload = SupporterImport(filename="old.csv", stored_path="/nowhere/old.csv")
    db.session.add(upload)
    db.session.flush()
    db.session.add(
        ImportRejection(
            import_id=upload.id, row_number=7, reason="Unknown list", raw="JANE@example.org,Jane"
        )
    )
    db.session.commit()
    return ids


def _target(position: int) -> int:
    from app.campaigns.models import CampaignTarget

    return db.session.scalar(select(CampaignTarget.id).where(CampaignTarget.position == position))


def test_export_holds_actions_letters_deliveries_and_events(client, admin, world):
    export = client.get(f"/api/v1/supporters/{world['jane']}/export", headers=admin).get_json()

    assert export["supporter"]["email"] == "jane@example.org"
    [action] = export["campaign_actions"]
    assert action["campaign_id"] == world["campaign"] and action["mailing_id"] == world["mailing"]
    assert action["channel"] == "email" and "I, a nurse, urge you" in action["letter_body"]
    assert [(x["target_name"], x["status"]) for x in action["letters"]] == [
        ("Todd Lyons", "sent"),
        ("Ana Ruiz", "queued"),
        ("Kristi Noem", "held"),
    ]
    assert action["letters"][0]["message_id"] and action["letters"][0]["sent_at"]
    [delivery] = export["deliveries"]
    assert delivery["mailing_id"] == world["mailing"] and delivery["status"] == "sent"
    assert delivery["mailing_name"] == "Write for the parents"
    assert delivery["last_error"] == "452 <jane@example.org> mailbox full"
    kinds = sorted(e["kind"] for e in export["tracking_events"])
    assert kinds == ["action", "click", "open"]
    [click] = [e for e in export["tracking_events"] if e["kind"] == "click"]
    assert click["link_url"] == "https://act.example.org/petition" and not click["machine"]
    assert export["bounce_events"][0]["detail"] == "jane@example.org: over quota"
    assert [(r["row_number"], r["raw"]) for r in export["import_rejections"]] == [
        (7, "JANE@example.org,Jane")
    ]
    assert export["unconfirmed_actions"] == []
    # Only Jane's own rows: Bob's letter is not in her export.
    assert "Bob" not in json.dumps(export)


def test_erasure_keeps_every_count_and_forgets_the_person(client, admin, api_token, world):
    analyst = api_token("analyst")
    stats_url = f"/api/v1/mailings/{world['mailing']}/stats"
    actions_url = f"/api/v1/campaigns/{world['campaign']}/actions"
    letters_url = f"/api/v1/campaigns/{world['campaign']}/letters"
    stats_before = client.get(stats_url, headers=analyst).get_json()
    actions_before = client.get(actions_url, headers=analyst).get_json()
    letters_before = client.get(letters_url, headers=analyst).get_json()
    assert stats_before["actions"]["all"] == 2 and stats_before["clicks"]["all"] == 2
    assert all(piece in _every_row_as_text() for piece in JANES_DATA)  # the check below bites

    assert client.delete(f"/api/v1/supporters/{world['jane']}", headers=admin).status_code == 204

    assert client.get(stats_url, headers=analyst).get_json() == stats_before
    actions_after = client.get(actions_url, headers=analyst).get_json()
    assert actions_after["pagination"] == actions_before["pagination"]
    janes, bobs = actions_after["items"]
    assert janes["supporter_id"] is None and janes["letter_body"] == ERASED_LETTER
    assert (janes["channel"], janes["mailing_id"]) == ("email", world["mailing"])
    assert bobs == actions_before["items"][1]  # Bob's action is untouched

    letters_after = client.get(letters_url, headers=analyst).get_json()
    assert letters_after["pagination"]["total"] == letters_before["pagination"]["total"] == 6
    before = {x["id"]: x for x in letters_before["items"]}
    changed = {}
    for letter in letters_after["items"]:
        was = before[letter["id"]]
        if letter != was:
            changed[was["status"], letter["status"]] = letter
    # Only Jane's queued letter changed: withdrawn. Her sent one keeps its time and Message-ID.
    assert list(changed) == [("queued", "failed")]
    assert changed["queued", "failed"]["error"] == WITHDRAWN
    assert [x["status"] for x in letters_after["items"]].count("sent") == 2

    # Nothing anywhere still holds what only Jane's rows held; Bob's data is all there.
    everything = _every_row_as_text()
    for piece in JANES_DATA:
        assert piece not in everything, piece
    assert "bob@example.net" in everything and "Bob Ng" in everything
    assert db.session.scalar(select(ImportRejection.reason)) == "Unknown list"
    assert db.session.get(Supporter, world["jane"]) is None


def test_a_queued_letter_of_an_erased_supporter_is_never_sent(client, admin, settings, world):
    [queued] = db.session.scalars(
        select(Letter)
        .join(Action, Action.id == Letter.action_id)
        .where(Action.supporter_id == world["jane"], Letter.status == LetterStatus.QUEUED)
    )
    queued_id = queued.id
    client.delete(f"/api/v1/supporters/{world['jane']}", headers=admin)
    assert deliver_letter(queued_id, settings).status == "done"  # its RQ job may still run
    assert db.session.get(Letter, queued_id).status == LetterStatus.FAILED


def test_cli_exports_then_erases(app, world, tmp_path):
    runner = app.test_cli_runner()
    out = tmp_path / "jane.json"
    result = runner.invoke(args=["supporters", "export-data", str(world["jane"]), "-o", str(out)])
    assert result.exit_code == 0, result.output
    export = json.loads(out.read_text(encoding="utf-8"))
    assert "I, a nurse, urge you" in export["campaign_actions"][0]["letter_body"]
    assert len(export["tracking_events"]) == 3

    refused = runner.invoke(args=["supporters", "erase", str(world["jane"])], input="n\n")
    assert refused.exit_code == 1 and db.session.get(Supporter, world["jane"]) is not None
    done = runner.invoke(args=["supporters", "erase", str(world["jane"]), "--yes"])
    assert done.exit_code == 0 and f"Erased supporter {world['jane']}" in done.output
    db.session.expire_all()
    assert db.session.get(Supporter, world["jane"]) is None
    assert (
        db.session.scalar(select(Action.letter_body).where(Action.supporter_id.is_(None)))
        == ERASED_LETTER
    )

    missing = runner.invoke(args=["supporters", "export-data", str(world["jane"])])
    assert missing.exit_code == 1 and "There is no supporter" in missing.output


def test_export_and_erase_of_an_unknown_supporter_are_404(client, admin):
    assert client.get("/api/v1/supporters/987654/export", headers=admin).status_code == 404
    assert client.delete("/api/v1/supporters/987654", headers=admin).status_code == 404


def _every_row_as_text() -> str:
    rows = []
    for table in db.metadata.sorted_tables:
        rows += db.session.scalars(text(f'SELECT CAST(t AS text) FROM "{table.name}" t')).all()
    return "\n".join(rows)
