"""The Reports pages: mailings compared (filters, sorting, CSV) and a campaign's report."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest

from app.auth.models import Role
from app.campaigns.services import record_action
from app.extensions import db
from app.links.tokens import LinkClaims
from app.tracking import machine
from app.tracking.models import EventKind
from app.tracking.services import record_event
from tests.factories import make_campaign, make_delivery, make_sent_mailing, make_supporter

NOV = datetime(2026, 11, 1, tzinfo=UTC)
PERSON = machine.Verdict(False, "", "browser")


def mailing_sent(name, started_at, campaign=None, *, delivered, actors=0, openers=0):
    mailing = make_sent_mailing(name)
    mailing.started_at = started_at
    mailing.campaign_id = campaign.id if campaign else None
    slug = name.lower().replace(" ", "-")
    people = [make_supporter(f"{slug}-{n}@example.org") for n in range(delivered)]
    for person in people:
        make_delivery(mailing, person)
    for person in people[:openers]:
        record_event(EventKind.OPEN, LinkClaims(mailing.id, person.id), PERSON)
    for person in people[:actors]:
        record_action(campaign, person, channel="email", mailing_id=mailing.id)
    return mailing


@pytest.fixture
def sent():
    campaign = make_campaign(slug="ice-letters")  # one target, at ice.example
    quiet = mailing_sent("Quiet alert", NOV + timedelta(days=1), campaign, delivered=10, actors=1)
    loud = mailing_sent("Loud alert", NOV + timedelta(days=5), campaign, delivered=4, actors=3)
    news = mailing_sent("Newsletter", NOV + timedelta(days=9), delivered=2, openers=2)
    record_action(campaign, make_supporter("walk-in@example.org"), channel="public")
    db.session.commit()
    return campaign, quiet.id, loud.id, news.id


def row_ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr data-mailing-id="(\d+)"', html)]


def test_analyst_compares_mailings_sorted_by_letters_per_thousand(staff_client, sent):
    _, quiet, loud, news = sent
    client = staff_client(Role.ANALYST)
    page = client.get("/staff/reports/?sort=-letters_per_1000&target_domain=ice.example")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    # Loud: 3 letters / 4 delivered = 750 per 1,000; quiet 100; the newsletter none.
    assert row_ids(html) == [loud, quiet, news]
    assert "750.0" in html and "100.0" in html
    assert 'aria-sort="descending"' in html
    # The header link flips the order and keeps the filter.
    assert "sort=letters_per_1000" in html and "target_domain=ice.example" in html
    ascending = client.get("/staff/reports/?sort=letters_per_1000").get_data(as_text=True)
    assert row_ids(ascending) == [news, quiet, loud]


def test_the_default_is_the_last_mailings_newest_first(staff_client, sent):
    _, quiet, loud, news = sent
    html = staff_client(Role.ANALYST).get("/staff/reports/").get_data(as_text=True)
    assert row_ids(html) == [news, loud, quiet]
    last_two = staff_client(Role.ANALYST).get("/staff/reports/?last=2").get_data(as_text=True)
    assert row_ids(last_two) == [news, loud]


def test_filters_by_date_range_and_campaign(staff_client, sent):
    campaign, quiet, loud, _ = sent
    client = staff_client(Role.ANALYST)
    html = client.get("/staff/reports/?sent_after=2026-11-03&sent_before=2026-11-30").get_data(
        as_text=True
    )
    assert set(row_ids(html)) == {loud, sent[3]}
    html = client.get(f"/staff/reports/?campaign_id={campaign.id}").get_data(as_text=True)
    assert set(row_ids(html)) == {quiet, loud}


def test_csv_download_keeps_filters_and_order(staff_client, sent):
    _, quiet, loud, news = sent
    client = staff_client(Role.ANALYST)
    html = client.get("/staff/reports/?sort=-letters_per_1000").get_data(as_text=True)
    link = re.search(r'href="(/staff/reports/mailings\.csv[^"]*)"', html).group(1)
    response = client.get(link.replace("&amp;", "&"))
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [int(r["mailing_id"]) for r in rows] == [loud, quiet, news]
    assert rows[0]["letters"] == "3" and rows[0]["delivered"] == "4"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("last=abc", "Not a valid integer value"),
        ("last=0", "between 1 and 200"),
        ("last=99999999999999999999999", "between 1 and 200"),
        ("sent_after=yesterday", "Not a valid date value"),
        ("sent_after=2026-11-30&sent_before=2026-11-01", "must come after its start"),
        ("campaign_id=999999", "Not a valid choice"),
        ("target_domain=%25%27%3Cscript%3E", "Give a domain such as ice.example"),
        ("sort=password", "Unknown sort column"),
    ],
)
def test_bad_filters_show_a_page_with_the_message(staff_client, sent, query, message):
    client = staff_client(Role.ANALYST)
    for path in ("/staff/reports/", "/staff/reports/mailings.csv"):
        response = client.get(f"{path}?{query}")
        assert response.status_code == 422, (path, query)
        html = response.get_data(as_text=True)
        assert message in html
        assert "<script>" not in html
        assert 'class="error"' in html


def test_a_nul_in_a_filter_is_refused_not_a_500(staff_client, sent):
    response = staff_client(Role.ANALYST).get("/staff/reports/?campaign_id=%00")
    assert response.status_code == 400


def test_reports_need_signing_in(anonymous_client, sent):
    campaign = sent[0]
    for path in ("/staff/reports/", f"/staff/reports/campaigns/{campaign.id}"):
        response = anonymous_client.get(path)
        assert response.status_code in (302, 303)
        assert "/staff/login" in response.headers["Location"]


@pytest.mark.parametrize("role", [Role.ANALYST, Role.CAMPAIGNER, Role.ADMIN])
def test_every_role_reads_reports(staff_client, sent, role):
    assert staff_client(role).get("/staff/reports/").status_code == 200


def test_campaign_report_page(staff_client, sent):
    campaign, quiet, loud, _ = sent
    client = staff_client(Role.ANALYST)
    show = client.get(f"/staff/campaigns/{campaign.id}").get_data(as_text=True)
    assert f'href="/staff/reports/campaigns/{campaign.id}"' in show
    page = client.get(f"/staff/reports/campaigns/{campaign.id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert '<svg role="img"' in html and html.count("<h1>") == 1
    # Today's five actions: four through mailings, one on the public page.
    assert re.search(r'data-figure="actions"><span class="figure">5<', html)
    assert re.search(r'data-figure="without_mailing"><span class="figure">1<', html)
    assert f'<tr data-mailing-id="{loud}">' in html and f'<tr data-mailing-id="{quiet}">' in html
    assert '<tr data-mailing-id="none">' in html
    assert re.search(r'data-state="queued">5<', html)  # five letters to Todd Lyons, waiting
    targets = client.get(f"/staff/reports/campaigns/{campaign.id}/targets.csv")
    assert targets.mimetype == "text/csv"
    [row] = list(csv.DictReader(io.StringIO(targets.get_data(as_text=True))))
    assert row["name"] == "Todd Lyons" and row["queued"] == "5" and row["total"] == "5"


def test_campaign_report_of_no_actions_and_unknown_campaigns(staff_client):
    campaign = make_campaign(slug="nobody-yet")
    db.session.commit()
    client = staff_client(Role.ANALYST)
    html = client.get(f"/staff/reports/campaigns/{campaign.id}").get_data(as_text=True)
    assert "No one has acted yet." in html
    assert client.get("/staff/reports/campaigns/999999").status_code == 404
    assert client.get(f"/staff/reports/campaigns/{campaign.id}/secrets.csv").status_code == 404
