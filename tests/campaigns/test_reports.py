"""Campaign reports and mailings compared by letters, through the services, the API and the CSV.

The expected figures are counted here from the rows each test makes (who was sent what, who
acted on which mailing, which targets each campaign writes to), not read back from the code
under test.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest

from app.campaigns.models import Action, Letter, LetterStatus
from app.campaigns.reports import LetterFilter, campaign_report, compare_mailings
from app.campaigns.services import record_action
from app.extensions import db
from app.links.tokens import LinkClaims
from app.mailings.models import DeliveryStatus
from app.privacy import erase_supporter
from app.supporters.services import find_by_email
from app.tracking import machine
from app.tracking.comparisons import MailingSelection
from app.tracking.models import EventKind
from app.tracking.services import record_event
from tests.factories import make_campaign, make_delivery, make_sent_mailing, make_supporter

NOV, DEC = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
PERSON = machine.Verdict(False, "", "browser")
PROXY = machine.Verdict(True, "apple-mpp", "apple-mpp")
LAST_MONTH = "sent_after=2026-11-01&sent_before=2026-12-01"
ICE_QUESTION = (
    f"/api/v1/reports/mailings?{LAST_MONTH}&target_domain=ice.example&sort=-letters_per_1000"
)

ICE_DIRECTOR = {
    "name": "Todd Lyons",
    "organisation": "Immigration and Customs Enforcement",
    "salutation": "Dear Acting Director Lyons",
    "email": "todd.lyons@ice.example",
}
SENATOR = {"name": "Sen. Reyes", "salutation": "Dear Senator", "email": "reyes@senate.example"}
GOVERNOR = {"name": "Gov. Hall", "salutation": "Dear Governor", "postal_address": "1 State St"}
FIELD_OFFICE = {
    "name": "ERO Field Office",
    "salutation": "Dear Director",
    "email": "field@ero.ice.example",  # a subdomain of ice.example: letters to ICE too
}
# Not ICE, though the name ends the same way.
LOOKALIKE = {"name": "Mayor", "salutation": "Dear Mayor", "email": "mayor@notice.example"}


@dataclass
class Sent:
    """One mailing as the test made it, with what the test knows it should count."""

    mailing_id: int
    delivered: int
    human_openers: int
    actors: int
    letters_to_ice: int
    name: str = ""
    extra: dict = field(default_factory=dict)


def send(name, started_at, campaign, *, delivered, failed=0, actors=0, openers=0, proxies=0):
    """Make a mailing sent to `delivered` people (+ failed), `actors` of whom act on it."""
    mailing = make_sent_mailing(name)
    mailing.started_at = started_at
    mailing.campaign_id = campaign.id if campaign else None
    slug = name.lower().replace(" ", "-")
    people = [make_supporter(f"{slug}-{n}@example.org") for n in range(delivered + failed)]
    for n, person in enumerate(people):
        delivery = make_delivery(mailing, person)
        if n >= delivered:
            delivery.status = DeliveryStatus.FAILED
    for person in people[:openers]:
        record_event(EventKind.OPEN, LinkClaims(mailing.id, person.id), PERSON)
    for person in people[openers : openers + proxies]:
        record_event(EventKind.OPEN, LinkClaims(mailing.id, person.id), PROXY)
    for person in people[:actors]:
        record_action(campaign, person, channel="email", mailing_id=mailing.id)
    domains = [t.email.split("@")[1] for t in (campaign.targets if campaign else []) if t.email]
    ice_targets = sum(1 for d in domains if d == "ice.example" or d.endswith(".ice.example"))
    return Sent(mailing.id, delivered, openers, actors, actors * ice_targets, name)


@pytest.fixture
def alerts():
    """Last month's alerts (and one from October) for two campaigns writing to ICE."""
    family = make_campaign(slug="family", targets=[ICE_DIRECTOR, SENATOR, GOVERNOR])
    field_office = make_campaign(slug="field-office", targets=[FIELD_OFFICE, LOOKALIKE])
    sent = {
        "family": send(
            "Family alert",
            NOV + timedelta(days=2),
            family,
            delivered=4,
            failed=1,
            actors=2,
            openers=3,
            proxies=1,
        ),
        "field": send(
            "Field office alert",
            NOV + timedelta(days=19),
            field_office,
            delivered=5,
            actors=3,
            openers=2,
        ),
        "newsletter": send("Newsletter", NOV + timedelta(days=9), None, delivered=3, openers=1),
        "undelivered": send("Undelivered", NOV + timedelta(days=11), family, delivered=0, failed=2),
        "october": send("October alert", NOV - timedelta(days=4), family, delivered=2, actors=2),
    }
    # On the public page, through no mailing: it counts for the campaign, not for any mailing.
    record_action(family, make_supporter("walk-in@example.org"), channel="public")
    db.session.commit()
    return family, field_office, sent


def test_letters_to_ice_per_thousand_delivered_last_month(alerts):
    _, _, sent = alerts
    comparison = compare_mailings(
        MailingSelection(sent_after=NOV, sent_before=DEC),
        LetterFilter(target_domain="ice.example"),
        "-letters_per_1000",
    )
    in_november = [s for key, s in sent.items() if key != "october"]
    assert {r["mailing_id"] for r in comparison.rows} == {s.mailing_id for s in in_november}
    by_id = {r["mailing_id"]: r for r in comparison.rows}
    for s in in_november:
        row = by_id[s.mailing_id]
        assert row["delivered"] == s.delivered
        assert row["human_opens"] == s.human_openers
        assert row["actions"] == s.actors
        assert row["letters"] == s.letters_to_ice
        expected = 1000 * s.letters_to_ice / s.delivered if s.delivered else None
        assert row["letters_per_1000"] == pytest.approx(expected)
    # Field office: 3 letters to ICE from 5 delivered (600); family: 2 from 4 (500); the
    # newsletter none; the undelivered mailing has no rate, so it comes last.
    assert [r["mailing_id"] for r in comparison.rows] == [
        sent["field"].mailing_id,
        sent["family"].mailing_id,
        sent["newsletter"].mailing_id,
        sent["undelivered"].mailing_id,
    ]


def test_without_a_target_filter_every_letter_counts(alerts):
    family, _, sent = alerts
    rows = compare_mailings(MailingSelection(last=10), sort="-letters").rows
    by_id = {r["mailing_id"]: r for r in rows}
    # Every target gets a letter: three per action on the family campaign, two on the other.
    assert by_id[sent["family"].mailing_id]["letters"] == 2 * len(family.targets)
    assert by_id[sent["field"].mailing_id]["letters"] == 3 * 2
    assert by_id[sent["october"].mailing_id]["letters"] == 2 * len(family.targets)


def test_the_ice_question_through_the_api(client, api_token, alerts):
    _, _, sent = alerts
    response = client.get(ICE_QUESTION, headers=api_token("analyst"))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    top = body["mailings"][0]
    assert top["mailing_id"] == sent["field"].mailing_id
    assert top["letters"] == 3 and top["delivered"] == 5
    assert top["letters_per_1000"] == pytest.approx(600)
    assert body["letters"]["target_domain"] == "ice.example"
    assert body["sort"] == "-letters_per_1000"
    assert [m["letters_per_1000"] for m in body["mailings"]][-1] is None


def test_the_ice_question_through_the_csv(client, api_token, alerts):
    _, _, sent = alerts
    path = ICE_QUESTION.replace("/reports/mailings?", "/reports/mailings.csv?")
    response = client.get(path, headers=api_token("analyst"))
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [int(r["mailing_id"]) for r in rows[:2]] == [
        sent["field"].mailing_id,
        sent["family"].mailing_id,
    ]
    assert float(rows[0]["letters_per_1000"]) == pytest.approx(600)
    assert float(rows[1]["letters_per_1000"]) == pytest.approx(500)
    assert rows[-1]["letters_per_1000"] == ""  # nothing delivered: no rate


def test_csv_cells_cannot_run_as_spreadsheet_formulas(client, api_token):
    mailing = make_sent_mailing('=HYPERLINK("http://evil.example","x")')
    mailing.started_at = NOV
    db.session.commit()
    response = client.get("/api/v1/reports/mailings.csv?last=1", headers=api_token("analyst"))
    [row] = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert row["name"].startswith("'=")


@pytest.mark.parametrize(
    "query",
    [
        "last=0",
        "last=abc",
        "sent_after=yesterday",
        "sent_after=2026-11-01T00:00:00",  # no time zone
        "sent_after=2026-12-01&sent_before=2026-11-01",
        "target_domain=%25",
        "target_domain=ice.example%27--",
        "sort=password",
        "campaign=1",  # a misspelt filter
    ],
)
def test_bad_filters_are_refused_with_422(client, api_token, query):
    response = client.get(f"/api/v1/reports/mailings?{query}", headers=api_token("analyst"))
    assert response.status_code == 422, response.get_data(as_text=True)
    assert "error" in response.get_json()


def test_reports_need_an_analyst_token(client, alerts):
    family, _, _ = alerts
    assert client.get("/api/v1/reports/mailings").status_code == 401
    assert client.get(f"/api/v1/campaigns/{family.id}/report").status_code == 401


def test_campaign_report_actions_by_day_and_source_and_letters_per_target(
    client, api_token, alerts
):
    family, _, sent = alerts
    actions = sorted(
        db.session.scalars(
            db.select(Letter.action_id)
            .join(Letter.action)
            .where(Letter.target_id == family.targets[0].id)
        )
    )
    assert len(actions) == 2 + 2 + 1
    # Recorded over three days, as they came in (the action rows are stamped when made).
    days = [
        date(2026, 11, 3),
        date(2026, 11, 3),
        date(2026, 11, 5),
        date(2026, 11, 5),
        date(2026, 11, 6),
    ]
    for action_id, day in zip(actions, days, strict=True):
        db.session.get(Action, action_id).created_at = datetime(
            day.year, day.month, day.day, 23, 30, tzinfo=UTC
        )
    # The letter worker's outcomes for some of the ICE director's letters.
    director_letters = db.session.scalars(
        db.select(Letter).where(Letter.target_id == family.targets[0].id).order_by(Letter.id)
    ).all()
    director_letters[0].status = LetterStatus.SENT
    director_letters[1].status = LetterStatus.SENT
    director_letters[2].status = LetterStatus.FAILED
    db.session.commit()

    report = campaign_report(family)
    assert [(d.day, d.total) for d in report.daily] == [
        (date(2026, 11, 3), 2),
        (date(2026, 11, 4), 0),
        (date(2026, 11, 5), 2),
        (date(2026, 11, 6), 1),
    ]
    sources = {s.mailing_id: s for s in report.sources}
    assert set(sources) == {sent["family"].mailing_id, sent["october"].mailing_id, None}
    assert sources[sent["family"].mailing_id].actions == 2
    assert sources[sent["family"].mailing_id].letters == 2 * 3
    assert sources[None].actions == 1 and sources[None].by_channel == {"public": 1}
    targets = {t.name: t for t in report.targets}
    assert targets["Todd Lyons"].by_status == {"queued": 2, "sent": 2, "failed": 1, "held": 0}
    assert targets["Gov. Hall"].by_status == {"queued": 0, "sent": 0, "failed": 0, "held": 5}
    assert targets["Todd Lyons"].email_domain == "ice.example"
    assert report.totals["actions"] == 5 and report.totals["without_mailing"] == 1
    assert report.totals["letters_total"] == 15

    body = client.get(f"/api/v1/campaigns/{family.id}/report", headers=api_token("analyst"))
    assert body.status_code == 200
    data = body.get_json()
    assert data["totals"]["actions"] == 5
    assert data["daily"][1] == {
        "day": "2026-11-04",
        "from_mailings": 0,
        "without_mailing": 0,
        "total": 0,
    }
    director = next(t for t in data["targets"] if t["name"] == "Todd Lyons")
    assert director["by_status"] == {"queued": 2, "sent": 2, "failed": 1, "held": 0}

    csv_text = client.get(
        f"/api/v1/campaigns/{family.id}/report.csv?table=targets", headers=api_token("analyst")
    ).get_data(as_text=True)
    rows = {r["name"]: r for r in csv.DictReader(io.StringIO(csv_text))}
    assert rows["Todd Lyons"]["sent"] == "2" and rows["Gov. Hall"]["held"] == "5"


def test_campaign_report_of_an_unknown_campaign_is_404(client, api_token):
    response = client.get("/api/v1/campaigns/999999/report", headers=api_token("analyst"))
    assert response.status_code == 404


def test_erasing_a_supporter_who_acted_changes_no_figure(alerts):
    family, _, sent = alerts
    selection = MailingSelection(sent_after=NOV, sent_before=DEC)
    ice = LetterFilter(target_domain="ice.example")
    before = compare_mailings(selection, ice).rows
    report_before = campaign_report(family)
    erase_supporter(find_by_email("family-alert-0@example.org"))
    db.session.commit()
    assert compare_mailings(selection, ice).rows == before
    report_after = campaign_report(family)
    assert report_after.daily == report_before.daily
    assert report_after.sources == report_before.sources
    assert report_after.totals["letters_total"] == report_before.totals["letters_total"]
    # Their two letters still queued are withdrawn (app/campaigns/privacy.py), not forgotten.
    letters_before, letters_after = report_before.totals["letters"], report_after.totals["letters"]
    assert letters_after["queued"] == letters_before["queued"] - 2
    assert letters_after["failed"] == letters_before["failed"] + 2
