"""The staff Supporters pages: directory and search, a supporter's page, edit, GDPR, lists, tags."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from app.auth.models import AuditEntry, Role
from app.campaigns.models import Action, Letter, LetterStatus
from app.db import utcnow
from app.extensions import db
from app.mailings.models import Delivery, DeliveryStatus
from app.supporters.models import (
    ErasedEmail,
    MailingList,
    SubscriptionChange,
    SubscriptionStatus,
    Supporter,
    Tag,
)
from app.supporters.services import add_tags, change_status
from app.tracking.models import EventKind, TrackingEvent
from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, needs_chromium
from tests.factories import make_campaign, make_list, make_mailing, make_supporter, make_supporters

HOSTILE = '<script>alert("x")</script>'


@pytest.fixture
def analyst(staff_client):
    return staff_client(Role.ANALYST)


@pytest.fixture
def campaigner(staff_client):
    return staff_client(Role.CAMPAIGNER)


@pytest.fixture
def admin(staff_client):
    return staff_client(Role.ADMIN)


def text_of(response) -> str:
    return response.get_data(as_text=True)


def listed_emails(html: str) -> list[str]:
    return re.findall(r'<th scope="row"><a href="/staff/supporters/\d+">([^<]+)</a>', html)


def audit_actions(subject_id: int) -> list[str]:
    return list(
        db.session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.subject_type == "supporter", AuditEntry.subject_id == subject_id)
            .order_by(AuditEntry.id)
        )
    )


# --- the directory ---------------------------------------------------------------------------


def test_no_supporters_shows_the_empty_state_with_an_import_link(analyst):
    page = text_of(analyst.get("/staff/supporters/"))
    assert "No supporters yet" in page
    assert 'href="/staff/imports/"' in page


def test_search_finds_by_address_name_and_postcode(analyst):
    jane = make_supporter("jane.doe@example.org", postcode="SW1A 1AA")
    make_supporter("john@example.net", first_name="John", last_name="Van Der Berg")
    make_supporter("someone@example.com", first_name="Ann", last_name="Smith", postcode="N1 9GU")

    def search(q):
        return listed_emails(text_of(analyst.get("/staff/supporters/", query_string={"q": q})))

    assert search("jane.doe@example.org") == ["jane.doe@example.org"]  # exact address
    assert search("JANE.DOE@EXAMPLE.ORG ") == ["jane.doe@example.org"]  # typed as staff type
    assert search("jo") == ["john@example.net"]  # address or first name prefix
    assert search("smi") == ["someone@example.com"]  # last name prefix
    assert search("john van d") == ["john@example.net"]  # first name, then a last name
    assert search("sw1a1aa") == [jane.email]  # postcode, spaces ignored
    assert search("n1 9g") == ["someone@example.com"]
    assert search("nobody") == []
    assert search("%") == []  # LIKE wildcards are literal
    assert search("_ane") == []


def test_filters_by_list_tag_and_status(analyst):
    network = make_list("Network")
    in_list = make_supporter("listed@example.org", lists=["Network"])
    tagged = make_supporter("tagged@example.org", tags=["vip"])
    gone = make_supporter("gone@example.org")
    change_status(gone, SubscriptionStatus.UNSUBSCRIBED, channel="test")
    tag_id = db.session.scalar(select(Tag.id).where(Tag.name == "vip"))
    db.session.flush()

    def emails(**args):
        return listed_emails(text_of(analyst.get("/staff/supporters/", query_string=args)))

    assert emails(list=network.id) == [in_list.email]
    assert emails(tag=tag_id) == [tagged.email]
    assert emails(status="unsubscribed") == [gone.email]
    assert emails(status="unsubscribed", q="tagged") == []
    # A stale or hand-edited filter filters on nothing rather than failing.
    assert len(emails(status="nonsense", list="abc", tag="-1", after="x")) == 3


def test_pages_are_keyset_pages_of_fifty_newest_first(analyst):
    ids = make_supporters(120)
    first = text_of(analyst.get("/staff/supporters/"))
    assert "120 supporters" in first
    assert listed_emails(first)[0] == "supporter119@example.org"
    assert len(listed_emails(first)) == 50
    next_link = re.search(r'href="(/staff/supporters/\?after=(\d+))"', first)
    assert next_link and int(next_link.group(2)) == ids[70]

    second = text_of(analyst.get(next_link.group(1).replace("&amp;", "&")))
    assert listed_emails(second)[0] == "supporter69@example.org"
    third_link = re.search(r'href="(/staff/supporters/\?after=\d+)"', second).group(1)
    third = text_of(analyst.get(third_link))
    assert len(listed_emails(third)) == 20
    assert "?after=" not in third.split("First page")[-1]  # no next page after the last


def test_paging_keeps_the_search(analyst):
    make_supporters(60, prefix="alpha")
    make_supporters(5, prefix="beta")
    first = text_of(analyst.get("/staff/supporters/?q=alpha"))
    link = re.search(r'href="(/staff/supporters/\?[^"]*after=\d+[^"]*)"', first).group(1)
    second = listed_emails(text_of(analyst.get(link.replace("&amp;", "&"))))
    assert len(second) == 10 and all(e.startswith("alpha") for e in second)


def test_a_search_matching_many_says_more_than_the_cap(analyst):
    make_supporters(5_001)
    page = text_of(analyst.get("/staff/supporters/?q=supp"))
    assert "More than 5,000 supporters match" in page
    assert "More than 5,000 supporters." in text_of(analyst.get("/staff/supporters/"))


def test_names_with_html_are_shown_escaped(analyst):
    supporter = make_supporter(
        "hostile@example.org", first_name=HOSTILE, custom_fields={"x": HOSTILE}
    )
    for url in ("/staff/supporters/", f"/staff/supporters/{supporter.id}"):
        page = text_of(analyst.get(url))
        assert HOSTILE not in page
        assert "&lt;script&gt;" in page


# --- one supporter ---------------------------------------------------------------------------


def test_a_supporters_page_shows_what_we_hold_and_what_they_did(analyst):
    supporter = make_supporter(
        "jane@example.org", postcode="N1 9GU", lists=None, custom_fields={"ward": "North"}
    )
    make_list("Network")
    add_tags(supporter, ["donor"])
    mailing = make_mailing(name="28 children alert")
    delivery = Delivery(
        mailing_id=mailing.id,
        supporter_id=supporter.id,
        batch_no=0,
        status=DeliveryStatus.SENT,
        sent_at=utcnow(),
    )
    db.session.add(delivery)
    db.session.flush()
    for kind, position in ((EventKind.OPEN, None), (EventKind.CLICK, 1), (EventKind.CLICK, 2)):
        db.session.add(
            TrackingEvent(
                kind=kind,
                mailing_id=mailing.id,
                supporter_id=supporter.id,
                delivery_id=delivery.id,
                link_position=position,
            )
        )
    campaign = make_campaign()
    action = Action(campaign_id=campaign.id, supporter_id=supporter.id, mailing_id=mailing.id)
    action.letters.append(Letter(target=campaign.targets[0], status=LetterStatus.SENT))
    db.session.add(action)
    db.session.flush()

    page = text_of(analyst.get(f"/staff/supporters/{supporter.id}"))
    assert "jane@example.org" in page and "N1 9GU" in page
    assert "donor" in page and "ward" in page and "North" in page
    assert "created" in page  # the consent history's first entry
    mailings = page.split('id="mailings-heading"')[1].split('id="actions-heading"')[0]
    assert "28 children alert" in mailings
    assert '<td class="num">2</td>' in mailings  # two links clicked
    actions = page.split('id="actions-heading"')[1]
    assert campaign.title in actions and "Todd Lyons" in actions and "sent" in actions
    assert f'href="/staff/supporters/{supporter.id}/edit"' not in page  # analysts only read


@pytest.mark.parametrize(
    "path", ["/staff/supporters/999999", "/staff/supporters/99999999999999999999"]
)
def test_unknown_supporter_is_a_404_page(analyst, path):
    response = analyst.get(path)
    assert response.status_code == 404
    assert "<h1>" in text_of(response)


def test_analyst_cannot_edit(analyst):
    supporter = make_supporter()
    assert analyst.get(f"/staff/supporters/{supporter.id}/edit").status_code == 403
    response = analyst.submit(f"/staff/supporters/{supporter.id}/edit", {"first_name": "X"})
    assert response.status_code == 403
    assert db.session.get(Supporter, supporter.id).first_name == "Jane"


def edit_form(supporter, **changes) -> dict:
    data = {
        "first_name": supporter.first_name or "",
        "last_name": supporter.last_name or "",
        "postcode": supporter.postcode or "",
        "tags": "",
    }
    data.update(changes)
    return data


def test_campaigner_edits_names_fields_lists_and_tags(campaigner):
    old, new = make_list("Old list"), make_list("New list")
    supporter = make_supporter(
        lists=["Old list"], tags=["keep", "drop"], custom_fields={"town": "X", "ward": "N"}
    )
    response = campaigner.submit(
        f"/staff/supporters/{supporter.id}/edit",
        {
            **edit_form(supporter, first_name="Janet", postcode="E1 6AN", tags="keep, fresh"),
            "lists": [str(new.id)],
            "custom_fields-0-name": "town",
            "custom_fields-0-value": "Shelbyville",
            "custom_fields-1-name": "ward",
            "custom_fields-1-value": "",  # blanked: removed
            "custom_fields-2-name": "age",
            "custom_fields-2-value": "41",
        },
    )
    assert response.status_code == 302, text_of(response)[:3000]
    db.session.expire_all()
    saved = db.session.get(Supporter, supporter.id)
    assert (saved.first_name, saved.postcode) == ("Janet", "E1 6AN")
    assert saved.custom_fields == {"town": "Shelbyville", "age": "41"}
    assert [m.name for m in saved.lists] == ["New list"]
    assert sorted(t.name for t in saved.tags) == ["fresh", "keep"]
    assert old.id  # the old list is still there, just without them


def test_edit_errors_are_shown_next_to_the_fields(campaigner):
    supporter = make_supporter()
    response = campaigner.submit(
        f"/staff/supporters/{supporter.id}/edit",
        {
            **edit_form(supporter, postcode="x" * 41),
            "lists": ["999999"],
            "custom_fields-0-name": "bad<name>",
            "custom_fields-0-value": "v",
        },
    )
    assert response.status_code == 422
    page = text_of(response)
    assert 'id="postcode-error"' in page
    assert 'id="lists-error"' in page
    assert 'id="custom_fields-0-name-error"' in page
    assert "bad&lt;name&gt;" in page
    assert db.session.get(Supporter, supporter.id).postcode is None


@pytest.mark.parametrize("token", [None, "forged-token"])
def test_edit_without_a_valid_csrf_token_is_refused(campaigner, token):
    supporter = make_supporter()
    data = edit_form(supporter, first_name="Mallory")
    if token:
        data["csrf_token"] = token
    response = campaigner.post(f"/staff/supporters/{supporter.id}/edit", data=data)
    assert response.status_code == 400
    assert db.session.get(Supporter, supporter.id).first_name == "Jane"


def test_staff_unsubscribe_records_consent_and_audit(campaigner):
    supporter = make_supporter()
    response = campaigner.submit(
        f"/staff/supporters/{supporter.id}/unsubscribe", {"reason": "asked by phone"}
    )
    assert response.status_code == 302
    db.session.expire_all()
    saved = db.session.get(Supporter, supporter.id)
    assert saved.status == SubscriptionStatus.UNSUBSCRIBED
    change = saved.history[-1]
    assert (change.channel, change.actor, change.detail) == (
        "staff",
        f"staff:{campaigner.user.email}",
        "asked by phone",
    )
    assert audit_actions(supporter.id) == ["supporter_unsubscribed"]
    page = text_of(campaigner.get(f"/staff/supporters/{supporter.id}"))
    assert "asked by phone" in page


def test_analyst_cannot_unsubscribe(analyst):
    supporter = make_supporter()
    assert analyst.submit(f"/staff/supporters/{supporter.id}/unsubscribe").status_code == 403
    assert db.session.get(Supporter, supporter.id).status == SubscriptionStatus.SUBSCRIBED


# --- GDPR ------------------------------------------------------------------------------------


def test_admin_downloads_the_gdpr_export(admin):
    supporter = make_supporter(tags=["donor"])
    response = admin.submit(f"/staff/supporters/{supporter.id}/export")
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    data = json.loads(response.get_data())
    assert data["supporter"]["email"] == supporter.email
    assert data["tags"] == ["donor"]
    assert audit_actions(supporter.id) == ["supporter_exported"]


def test_campaigner_may_neither_export_nor_erase(campaigner):
    supporter = make_supporter()
    assert campaigner.submit(f"/staff/supporters/{supporter.id}/export").status_code == 403
    assert campaigner.get(f"/staff/supporters/{supporter.id}/erase").status_code == 403
    data = {"confirm_email": supporter.email}
    assert campaigner.submit(f"/staff/supporters/{supporter.id}/erase", data).status_code == 403
    assert db.session.get(Supporter, supporter.id) is not None


def test_erase_page_says_what_is_kept_and_what_goes(admin):
    supporter = make_supporter()
    page = text_of(admin.get(f"/staff/supporters/{supporter.id}/erase"))
    assert "Removed" in page and "Kept, no longer linked to anyone" in page
    assert "No trace of the address" in page
    change_status(supporter, SubscriptionStatus.UNSUBSCRIBED, channel="test")
    db.session.flush()
    page = text_of(admin.get(f"/staff/supporters/{supporter.id}/erase"))
    assert "SHA-256 hash of the address is kept" in page


def test_erase_needs_the_address_typed_then_erases(admin):
    supporter = make_supporter("erase.me@example.org")
    change_status(supporter, SubscriptionStatus.UNSUBSCRIBED, channel="test")
    db.session.flush()
    url = f"/staff/supporters/{supporter.id}/erase"
    wrong = admin.submit(url, {"confirm_email": "someone@else.org"})
    assert wrong.status_code == 422
    assert 'id="confirm_email-error"' in text_of(wrong)
    assert db.session.get(Supporter, supporter.id) is not None

    response = admin.submit(url, {"confirm_email": " Erase.Me@example.org "})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Supporter, supporter.id) is None
    assert (
        db.session.scalar(
            select(SubscriptionChange).where(SubscriptionChange.supporter_id == supporter.id)
        )
        is None
    )
    assert db.session.scalar(select(ErasedEmail.status)) == SubscriptionStatus.UNSUBSCRIBED
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "supporter_erased"))
    assert entry.subject_id == supporter.id and "erase.me" not in entry.detail
    assert admin.get(f"/staff/supporters/{supporter.id}").status_code == 404


# --- lists and tags --------------------------------------------------------------------------


def test_lists_page_shows_member_counts(analyst):
    network = make_list("Network")
    make_supporters(3, mailing_list=network)
    page = text_of(analyst.get("/staff/supporters/lists"))
    assert "Network" in page and '<td class="num">3</td>' in page
    assert "Create list" not in page  # analysts only read


def test_campaigner_creates_renames_and_deletes_a_list(campaigner):
    response = campaigner.submit(
        "/staff/supporters/lists", {"name": "  Urgent  ", "description": ""}
    )
    assert response.status_code == 302
    mailing_list = db.session.scalar(select(MailingList).where(MailingList.name == "Urgent"))
    assert mailing_list is not None

    duplicate = campaigner.submit("/staff/supporters/lists", {"name": "Urgent"})
    assert duplicate.status_code == 422
    assert 'id="name-error"' in text_of(duplicate) and "already exists" in text_of(duplicate)

    rename = campaigner.submit(
        f"/staff/supporters/lists/{mailing_list.id}/edit", {"name": "Urgent Action"}
    )
    assert rename.status_code == 302
    member = make_supporter(lists=["Urgent Action"])
    confirm = text_of(campaigner.get(f"/staff/supporters/lists/{mailing_list.id}/delete"))
    assert "1 supporter is on this list" in confirm
    assert campaigner.submit(f"/staff/supporters/lists/{mailing_list.id}/delete").status_code == 302
    db.session.expire_all()
    assert db.session.get(MailingList, mailing_list.id) is None
    assert db.session.get(Supporter, member.id) is not None


def test_analyst_cannot_change_lists_or_tags(analyst):
    mailing_list = make_list("Network")
    assert analyst.submit("/staff/supporters/lists", {"name": "New"}).status_code == 403
    assert analyst.submit(f"/staff/supporters/lists/{mailing_list.id}/delete").status_code == 403
    assert analyst.submit("/staff/supporters/tags", {"name": "New"}).status_code == 403
    assert db.session.get(MailingList, mailing_list.id) is not None


def test_list_delete_without_csrf_is_refused(campaigner):
    mailing_list = make_list("Network")
    response = campaigner.post(f"/staff/supporters/lists/{mailing_list.id}/delete")
    assert response.status_code == 400
    assert db.session.get(MailingList, mailing_list.id) is not None


def test_campaigner_creates_renames_and_deletes_a_tag(campaigner):
    assert campaigner.submit("/staff/supporters/tags", {"name": HOSTILE}).status_code == 302
    page = text_of(campaigner.get("/staff/supporters/tags"))
    assert HOSTILE not in page and "&lt;script&gt;" in page
    tag = db.session.scalar(select(Tag).where(Tag.name == HOSTILE))
    supporter = make_supporter(tags=[HOSTILE])

    assert (
        campaigner.submit(f"/staff/supporters/tags/{tag.id}/edit", {"name": "donor"}).status_code
        == 302
    )
    assert (
        campaigner.submit(f"/staff/supporters/tags/{tag.id}/edit", {"name": ""}).status_code == 422
    )
    assert "1 supporter has this tag" in text_of(
        campaigner.get(f"/staff/supporters/tags/{tag.id}/delete")
    )
    assert campaigner.submit(f"/staff/supporters/tags/{tag.id}/delete").status_code == 302
    db.session.expire_all()
    assert db.session.get(Tag, tag.id) is None
    assert db.session.get(Supporter, supporter.id).tags == []


@pytest.mark.parametrize(
    "path", ["/staff/supporters/lists/424242/edit", "/staff/supporters/tags/424242/delete"]
)
def test_unknown_list_or_tag_is_a_404_page(campaigner, path):
    assert campaigner.get(path).status_code == 404


# --- accessibility ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser_page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.route("**/*", lambda route: route.abort())  # the page alone, as served
            yield page
        finally:
            browser.close()


def serious_violations(browser_page, pages: dict) -> dict:
    from axe_playwright_python.sync_playwright import Axe

    found = {}
    for name, response in pages.items():
        browser_page.set_content(response.get_data(as_text=True), wait_until="domcontentloaded")
        violations = Axe().run(browser_page).response["violations"]
        found[name] = [
            (v["id"], v["help"], [n["target"] for n in v["nodes"]][:3])
            for v in violations
            if v["impact"] in {"serious", "critical"}
        ]
    return found


@needs_chromium
def test_pages_have_no_serious_axe_violations(browser_page, staff_client):
    admin = staff_client(Role.ADMIN)
    pages = {"empty": admin.get("/staff/supporters/")}
    network = make_list("Network")
    supporter = make_supporter(lists=["Network"], tags=["donor"], postcode="N1 9GU")
    base = f"/staff/supporters/{supporter.id}"
    pages |= {
        "directory": admin.get("/staff/supporters/?q=jane"),
        "supporter": admin.get(base),
        "edit": admin.get(f"{base}/edit"),
        "edit with errors": admin.submit(f"{base}/edit", {"postcode": "x" * 41}),
        "erase": admin.get(f"{base}/erase"),
        "erase with errors": admin.submit(f"{base}/erase", {"confirm_email": "no"}),
        "lists": admin.get("/staff/supporters/lists"),
        "list with errors": admin.submit("/staff/supporters/lists", {"name": ""}),
        "rename list": admin.get(f"/staff/supporters/lists/{network.id}/edit"),
        "delete list": admin.get(f"/staff/supporters/lists/{network.id}/delete"),
        "tags": admin.get("/staff/supporters/tags"),
    }
    assert serious_violations(browser_page, pages) == {name: [] for name in pages}
