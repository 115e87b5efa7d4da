"""The staff Campaigns area, through the signed-in staff client on the real pages."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from app.auth.models import AuditEntry, Role
from app.campaigns import overviews, services
from app.campaigns.models import (
    Action,
    Campaign,
    CampaignStatus,
    CampaignTarget,
    Letter,
    LetterStatus,
    PendingAction,
)
from app.extensions import db
from tests.campaigns.conftest import make_campaign, make_supporter
from tests.campaigns.test_urgent_action import EXPULSIONS, FAMILY

POSTAL_TARGET = {
    "name": "Kristi Noem",
    "title": "Secretary of Homeland Security",
    "organisation": "U.S. Department of Homeland Security",
    "salutation": "Dear Secretary Noem",
    "email": None,
    "postal_address": "2707 Martin Luther King Jr. Avenue, SE\nWashington, DC 20528\nUSA",
}
EMAIL_TARGET = {
    "name": "Todd Lyons",
    "title": "Acting Director",
    "salutation": "Dear Acting Director Lyons",
    "email": "todd.lyons@ice.example",
}


def new_campaign_form(**fields) -> dict:
    return {
        "title": "Stop illegal expulsions",
        "slug": "stop-illegal-expulsions",
        "reference": "UA 034/25",
        "summary": "<p>People were expelled.</p>",
        "kind": "letter",
        "status": "draft",
        "deadline_date": "2027-01-12",
        "timezone": "America/New_York",
        "letter_subject": "Return them",
        "letter_body": "{salutation},\n\nReturn them.\n\nYours,\n{supporter_name}\n{supporter_town}",
        "targets-0-name": "Kristi Noem",
        "targets-0-salutation": "Dear Secretary Noem",
        "targets-0-postal_address": "2707 Martin Luther King Jr. Avenue, SE\nWashington, DC 20528",
        **fields,
    }


def error_for(page: str, field_id: str) -> str:
    """The error message shown next to the field with this id ('' when there is none)."""
    found = re.search(rf'<p class="error" id="{re.escape(field_id)}-error">(.*?)</p>', page, re.S)
    return html.unescape(found.group(1)) if found else ""


def act(campaign, email="jane@example.org", **data):
    supporter = make_supporter(email, **data)
    action, _ = services.record_action(campaign, supporter, channel="email")
    db.session.flush()
    return action


def audit_actions(campaign_id: int) -> list[str]:
    return list(
        db.session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.subject_type == "campaign", AuditEntry.subject_id == campaign_id)
            .order_by(AuditEntry.id)
        )
    )


def campaign_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Campaign))


# The list


def test_empty_list_says_so_and_hides_create_from_analysts(staff_client):
    page = staff_client(Role.ANALYST).get("/staff/campaigns/").get_data(as_text=True)
    assert "No campaigns yet." in page
    assert "/staff/campaigns/new" not in page


def test_list_shows_status_local_deadline_and_counts(staff_client):
    campaign = make_campaign(
        deadline=datetime(2027, 1, 13, 4, 59, 59, tzinfo=UTC), timezone="America/New_York"
    )
    act(campaign)
    act(campaign, "omar@example.org", first_name="Omar")
    make_campaign(slug="draft-one", title="A draft", status=CampaignStatus.DRAFT)
    page = staff_client(Role.ANALYST).get("/staff/campaigns/").get_data(as_text=True)
    row = re.search(r"<tr>\s*<th scope=\"row\"><a[^>]*>Reunite.*?</tr>", page, re.S).group(0)
    assert '<span class="badge open">open</span>' in row
    assert "12 January 2027, 23:59" in row  # the end of the 12th in New York, not UTC's 13th
    assert re.findall(r'<td class="num">(\d+)</td>', row) == ["2", "2"]
    assert '<span class="badge draft">draft</span>' in page


def test_list_pages_by_id(staff_client):
    first = make_campaign(slug="first", title="First campaign")
    for n in range(overviews.STAFF_PAGE_SIZE):
        make_campaign(slug=f"later-{n}", title=f"Later campaign {n}", targets=[])
    client = staff_client(Role.ANALYST)
    page = client.get("/staff/campaigns/").get_data(as_text=True)
    assert f"Later campaign {overviews.STAFF_PAGE_SIZE - 1}<" in page
    assert "First campaign" not in page
    older = html.unescape(re.search(r'href="(/staff/campaigns/\?after=\d+)"', page).group(1))
    second = client.get(older).get_data(as_text=True)
    assert first.title in second
    assert "Later campaign" not in second
    assert "Older campaigns" not in second


# Creating


def test_create_from_scratch_saves_campaign_targets_and_audit(staff_client):
    client = staff_client(Role.CAMPAIGNER)
    form = client.get("/staff/campaigns/new").get_data(as_text=True)
    for placeholder in ("{salutation}", "{supporter_name}", "{supporter_town}"):
        assert f"<code>{placeholder}</code>" in form
    response = client.submit("/staff/campaigns/new", new_campaign_form())
    assert response.status_code == 303
    campaign = services.campaign_by_slug("stop-illegal-expulsions")
    assert response.headers["Location"] == f"/staff/campaigns/{campaign.id}"
    assert campaign.status == CampaignStatus.DRAFT
    assert campaign.deadline == datetime(2027, 1, 13, 4, 59, 59, tzinfo=UTC)
    [target] = campaign.targets
    assert (target.name, target.email) == ("Kristi Noem", None)
    assert audit_actions(campaign.id) == ["campaign_created"]


def test_bad_timezone_is_refused_next_to_its_field(staff_client):
    client = staff_client(Role.CAMPAIGNER)
    response = client.submit("/staff/campaigns/new", new_campaign_form(timezone="Mars/Olympus"))
    assert response.status_code == 422
    assert error_for(response.get_data(as_text=True), "timezone") == "No time zone 'Mars/Olympus'."
    assert campaign_count() == 0


@pytest.mark.parametrize(
    ("fields", "field_id", "message"),
    [
        ({"slug": "Not A Slug!"}, "slug", "Use lower-case letters, digits and dashes."),
        ({"title": ""}, "title", "required"),
        ({"deadline_date": "2027-13-45"}, "deadline_date", "Not a valid date."),
        ({"status": "published"}, "status", "Must be one of"),
        ({"targets-0-salutation": ""}, "targets-0-salutation", "required"),
        ({"targets-0-postal_address": ""}, "targets-0-postal_address", "postal address"),
        ({"targets-0-email": "not-an-email"}, "targets-0-email", "Not a valid email address."),
    ],
)
def test_bad_fields_are_refused_next_to_the_field(staff_client, fields, field_id, message):
    response = staff_client(Role.CAMPAIGNER).submit(
        "/staff/campaigns/new", new_campaign_form(**fields)
    )
    assert response.status_code == 422
    assert message.lower() in error_for(response.get_data(as_text=True), field_id).lower()
    assert campaign_count() == 0


def test_a_slug_in_use_is_refused(staff_client):
    make_campaign(slug="stop-illegal-expulsions")
    response = staff_client(Role.CAMPAIGNER).submit("/staff/campaigns/new", new_campaign_form())
    assert response.status_code == 422
    assert "Another campaign" in error_for(response.get_data(as_text=True), "slug")


def test_pasted_urgent_action_prefills_the_form_and_saves_nothing(staff_client):
    client = staff_client(Role.CAMPAIGNER)
    response = client.submit("/staff/campaigns/new/from-urgent-action", {"urgent_action": FAMILY})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert campaign_count() == 0
    assert 'value="Stop separation of family seeking safety"' in page
    assert 'value="stop-separation-of-family-seeking-safety"' in page
    assert (
        'id="targets-0-salutation" name="targets-0-salutation" type="text" value="Dear Mr. Lyons"'
        in page
    )
    assert 'value="Todd.M.Lyons@ice.dhs.gov"' in page
    assert 'value="2025-06-24"' in page
    letter = re.search(r'<textarea[^>]*id="letter_body"[^>]*>(.*?)</textarea>', page, re.S)
    assert html.unescape(letter.group(1)).strip().startswith("{salutation},\n\nPlease release")
    assert "People at risk: Cesar (he/him), Norelia (she/her)" in html.unescape(page)


def test_pasted_form_submitted_creates_the_campaign(staff_client):
    client = staff_client(Role.CAMPAIGNER)
    page = client.submit(
        "/staff/campaigns/new/from-urgent-action", {"urgent_action": EXPULSIONS}
    ).get_data(as_text=True)
    assert 'value="UA 034/25"' in page
    fields = {
        name: html.unescape(value)
        for name, value in re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page)
    }
    fields |= {
        name: html.unescape(value).lstrip("\n")
        for name, value in re.findall(
            r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', page, re.S
        )
    }
    fields |= {"kind": "letter", "status": "draft", "timezone": "America/New_York"}
    fields.pop("urgent_action")
    response = client.submit("/staff/campaigns/new", fields)
    assert response.status_code == 303, error_for(response.get_data(as_text=True), "slug")
    campaign = services.campaign_by_slug("stop-illegal-expulsions-to-el-salvador")
    assert campaign.reference == "UA 034/25"
    assert campaign.targets[0].salutation == "Dear Secretary Noem"
    assert campaign.targets[0].email is None
    assert services.deadline_in_zone(campaign).date().isoformat() == "2025-07-01"


def test_empty_paste_is_refused_next_to_the_box(staff_client):
    response = staff_client(Role.CAMPAIGNER).submit(
        "/staff/campaigns/new/from-urgent-action", {"urgent_action": "  "}
    )
    assert response.status_code == 422
    assert "Paste" in error_for(response.get_data(as_text=True), "urgent_action")


# Roles and unknown ids


def test_analysts_read_but_cannot_change(staff_client):
    campaign = make_campaign(status=CampaignStatus.DRAFT)
    target = campaign.targets[0]
    client = staff_client(Role.ANALYST)
    assert client.get(f"/staff/campaigns/{campaign.id}").status_code == 200
    base = f"/staff/campaigns/{campaign.id}"
    for url in (
        "/staff/campaigns/new",
        "/staff/campaigns/new/from-urgent-action",
        f"{base}/edit",
        f"{base}/letter",
        f"{base}/open",
        f"{base}/close",
        f"{base}/targets/new",
        f"{base}/targets/{target.id}/edit",
        f"{base}/targets/{target.id}/remove",
    ):
        assert client.submit(url, new_campaign_form()).status_code == 403, url
    assert client.get("/staff/campaigns/new").status_code == 403
    db.session.refresh(campaign)
    assert campaign.status == CampaignStatus.DRAFT
    assert len(campaign.targets) == 1


def test_a_forged_post_without_csrf_is_refused(staff_client):
    campaign = make_campaign(status=CampaignStatus.DRAFT)
    client = staff_client(Role.CAMPAIGNER)
    assert client.post(f"/staff/campaigns/{campaign.id}/open").status_code == 400
    db.session.refresh(campaign)
    assert campaign.status == CampaignStatus.DRAFT


def test_unknown_ids_are_404(staff_client):
    campaign = make_campaign()
    other = make_campaign(slug="other")
    foreign_target = other.targets[0].id
    client = staff_client(Role.CAMPAIGNER)
    for url in (
        "/staff/campaigns/999999",
        "/staff/campaigns/99999999999999999999999",
        "/staff/campaigns/999999/edit",
        "/staff/campaigns/999999/preview",
        "/staff/campaigns/999999/letters",
        f"/staff/campaigns/{campaign.id}/targets/{foreign_target}/edit",
        f"/staff/campaigns/{campaign.id}/targets/{foreign_target}/print",
        f"/staff/campaigns/{campaign.id}/letters?target={foreign_target}",
        f"/staff/campaigns/{campaign.id}/letters?target=abc",
        f"/staff/campaigns/{campaign.id}/letters?status=lost",
    ):
        assert client.get(url).status_code == 404, url
    assert client.submit("/staff/campaigns/999999/open").status_code == 404


# Hostile input


def test_html_in_summary_is_sanitised_and_in_the_letter_escaped(staff_client):
    client = staff_client(Role.CAMPAIGNER)
    response = client.submit(
        "/staff/campaigns/new",
        new_campaign_form(
            title="<img src=x onerror=alert(1)>",
            summary="<p>Hi</p><script>alert('summary')</script><a href=\"javascript:x()\">x</a>",
            letter_body="{salutation},\n<script>alert('letter')</script>",
        ),
    )
    campaign = services.campaign_by_slug("stop-illegal-expulsions")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "<script>" not in page
    assert "javascript:" not in page
    assert "&lt;script&gt;alert(&#39;letter&#39;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<p>Hi</p>" in page
    preview = client.get(f"/staff/campaigns/{campaign.id}/preview").get_data(as_text=True)
    frame = html.unescape(re.search(r'srcdoc="([^"]*)"', preview).group(1))
    assert "<script>alert('summary')" not in frame
    assert "&lt;script&gt;alert(&#39;letter&#39;)" in frame


# Targets


def test_targets_are_added_edited_and_removed(staff_client):
    campaign = make_campaign(targets=[EMAIL_TARGET], status=CampaignStatus.DRAFT)
    client = staff_client(Role.CAMPAIGNER)
    base = f"/staff/campaigns/{campaign.id}/targets"
    assert client.submit(f"{base}/new", POSTAL_TARGET | {"email": ""}).status_code == 303
    db.session.refresh(campaign)
    lyons, noem = campaign.targets
    assert (noem.name, noem.email, noem.position) == ("Kristi Noem", None, 1)
    response = client.submit(
        f"{base}/{lyons.id}/edit", EMAIL_TARGET | {"email": "new.address@ice.example"}
    )
    assert response.status_code == 303
    db.session.refresh(lyons)
    assert lyons.email == "new.address@ice.example"
    page = client.get(f"/staff/campaigns/{campaign.id}").get_data(as_text=True)
    assert "Post only" in page and "new.address@ice.example" in page
    assert client.submit(f"{base}/{noem.id}/remove").status_code == 303
    db.session.refresh(campaign)
    assert [t.name for t in campaign.targets] == ["Todd Lyons"]


def test_target_errors_are_shown_next_to_their_fields(staff_client):
    campaign = make_campaign()
    client = staff_client(Role.CAMPAIGNER)
    url = f"/staff/campaigns/{campaign.id}/targets/new"
    unreachable = client.submit(url, {"name": "Nobody", "salutation": "Dear Nobody"})
    assert unreachable.status_code == 422
    assert "postal address" in error_for(unreachable.get_data(as_text=True), "postal_address")
    bad = client.submit(url, {"name": "", "salutation": "Dear X", "email": "nope"})
    page = bad.get_data(as_text=True)
    assert error_for(page, "email") == "Not a valid email address."
    assert "required" in error_for(page, "name").lower()
    assert len(campaign.targets) == 1


def test_a_target_with_letters_cannot_be_removed(staff_client):
    campaign = make_campaign()
    act(campaign)
    target = campaign.targets[0]
    client = staff_client(Role.CAMPAIGNER)
    response = client.submit(f"/staff/campaigns/{campaign.id}/targets/{target.id}/remove")
    assert response.status_code == 303
    assert db.session.get(CampaignTarget, target.id) is not None
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "can no longer be removed" in page


# Letter editor and preview


def test_letter_editor_saves_the_model_letter(staff_client):
    campaign = make_campaign()
    client = staff_client(Role.CAMPAIGNER)
    url = f"/staff/campaigns/{campaign.id}/letter"
    assert "<code>{supporter_town}</code>" in client.get(url).get_data(as_text=True)
    response = client.submit(
        url,
        {"letter_subject": "Act now", "letter_body": "{salutation},\nFree them.\n{supporter_name}"},
    )
    assert response.status_code == 303
    db.session.refresh(campaign)
    assert campaign.letter_body == "{salutation},\nFree them.\n{supporter_name}"
    typo = client.submit(url, {"letter_body": "{salutation},\n{name} and {name}, {supporter_town}"})
    warning = client.get(typo.headers["Location"]).get_data(as_text=True)
    assert "has {name}, which is not a placeholder" in html.unescape(warning)
    too_long = client.submit(url, {"letter_body": "x" * 20_001})
    assert too_long.status_code == 422
    assert "20000" in error_for(too_long.get_data(as_text=True), "letter_body")


def test_preview_as_a_supporter_fills_their_letter_and_records_nothing(staff_client):
    campaign = make_campaign()
    supporter = make_supporter("jane@example.org")
    client = staff_client(Role.ANALYST)
    for asked in ("JANE@example.org", str(supporter.id)):
        page = client.get(
            f"/staff/campaigns/{campaign.id}/preview", query_string={"supporter": asked}
        ).get_data(as_text=True)
        assert 'sandbox srcdoc="' in page
        frame = html.unescape(re.search(r'srcdoc="([^"]*)"', page).group(1))
        letter = html.unescape(re.search(r"<textarea[^>]*>(.*?)</textarea>", frame, re.S).group(1))
        assert letter.startswith("Dear Acting Director Lyons,\n\nI urge you to release")
        assert letter.endswith("Yours sincerely,\nJane Doe\nSpringfield")
        assert "Please act by" in frame
    assert db.session.scalar(select(func.count()).select_from(Action)) == 0
    assert db.session.scalar(select(func.count()).select_from(PendingAction)) == 0


def test_preview_for_an_unknown_supporter_says_so(staff_client):
    campaign = make_campaign()
    response = staff_client(Role.ANALYST).get(
        f"/staff/campaigns/{campaign.id}/preview?supporter=nobody@example.org"
    )
    assert response.status_code == 404
    assert "No supporter" in error_for(response.get_data(as_text=True), "supporter")


# Letters and printing


def test_letters_per_target_show_their_delivery_state(staff_client):
    campaign = make_campaign(targets=[EMAIL_TARGET, POSTAL_TARGET])
    act(campaign)
    sent = act(campaign, "omar@example.org", first_name="Omar", last_name="Haddad")
    emailed = next(letter for letter in sent.letters if letter.target.email)
    emailed.status = LetterStatus.SENT
    db.session.flush()
    client = staff_client(Role.ANALYST)
    page = client.get(f"/staff/campaigns/{campaign.id}").get_data(as_text=True)
    lyons_row = re.search(r"<th scope=\"row\">Todd Lyons.*?</tr>", page, re.S).group(0)
    # queued, sent, failed, held
    assert re.findall(r'<td class="num">(\d+)</td>', lyons_row) == ["1", "1", "0", "0"]
    noem_row = re.search(r"<th scope=\"row\">Kristi Noem.*?</tr>", page, re.S).group(0)
    assert re.findall(r'<td class="num">(\d+)</td>', noem_row) == ["0", "0", "0", "2"]
    held = client.get(f"/staff/campaigns/{campaign.id}/letters?status=held").get_data(as_text=True)
    assert held.count('<span class="badge held">held</span>') == 2
    assert "badge sent" not in held
    assert "Omar Haddad, Springfield" in held


def test_print_page_has_one_letter_per_page_with_names_and_address(staff_client):
    campaign = make_campaign(targets=[EMAIL_TARGET, POSTAL_TARGET])
    act(campaign)
    act(campaign, "omar@example.org", first_name="Omar", custom_fields={"town": "Leeds"})
    noem = campaign.targets[1]
    client = staff_client(Role.ANALYST)
    page = client.get(f"/staff/campaigns/{campaign.id}/targets/{noem.id}/print").get_data(
        as_text=True
    )
    letters = re.findall(r'<article class="letter".*?</article>', page, re.S)
    assert len(letters) == 2
    assert "Jane Doe<br>Springfield" in letters[0]
    assert "Omar Doe<br>Leeds" in letters[1]
    for letter in letters:
        assert "2707 Martin Luther King Jr. Avenue, SE\nWashington, DC 20528\nUSA" in letter
        assert "Dear Secretary Noem," in letter  # the letter addressed to this target
    assert '<div class="no-print">' in page
    emailed = campaign.targets[0]
    nothing = client.get(f"/staff/campaigns/{campaign.id}/targets/{emailed.id}/print")
    assert "No letters to Todd Lyons are waiting" in nothing.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Letter)) == 4


# Opening and closing


def test_open_and_close_are_audited(staff_client):
    campaign = make_campaign(status=CampaignStatus.DRAFT)
    client = staff_client(Role.CAMPAIGNER)
    assert client.submit(f"/staff/campaigns/{campaign.id}/open").status_code == 303
    db.session.refresh(campaign)
    assert campaign.status == CampaignStatus.OPEN
    assert client.submit(f"/staff/campaigns/{campaign.id}/close").status_code == 303
    db.session.refresh(campaign)
    assert campaign.status == CampaignStatus.CLOSED
    assert audit_actions(campaign.id) == ["campaign_opened", "campaign_closed"]
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "campaign_closed"))
    assert entry.actor == f"staff:{client.user.email}"


def test_edit_changes_details_but_not_status(staff_client):
    campaign = make_campaign(status=CampaignStatus.DRAFT)
    client = staff_client(Role.CAMPAIGNER)
    url = f"/staff/campaigns/{campaign.id}/edit"
    page = client.get(url).get_data(as_text=True)
    assert 'value="release-the-parents"' in page
    form = new_campaign_form(slug="release-the-parents", status="open", title="New title")
    assert client.submit(url, form).status_code == 303
    db.session.refresh(campaign)
    assert campaign.title == "New title"
    assert campaign.status == CampaignStatus.DRAFT
    bad = client.submit(url, form | {"timezone": "Nowhere/Land"})
    assert "No time zone" in error_for(bad.get_data(as_text=True), "timezone")


def test_an_overlong_paste_is_refused_next_to_the_box(staff_client):
    response = staff_client(Role.CAMPAIGNER).submit(
        "/staff/campaigns/new/from-urgent-action", {"urgent_action": "x" * 40_000}
    )
    assert response.status_code == 422
    assert error_for(response.get_data(as_text=True), "urgent_action") == (
        "Paste at most 30,000 characters."
    )
