"""Every staff page, walked from the URL map in Chromium, passes axe-core (Clarion issue #11).

One of everything is seeded and committed, the real app is served on loopback, and an admin
signs in through the login page. Each staff rule that answers GET is built with the seeded ids
and checked: 200, no serious or critical axe violation, one <h1>, a <title>. A full-page
screenshot of each is left under test-artifacts/staff/ for CI to keep. A new GET page that the
walk can neither build nor names in NOT_PAGES or CHECKED_ELSEWHERE fails the walk.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import timedelta

import pyotp
import pytest
from flask import url_for
from sqlalchemy import select, update

from app.auth import accounts, audit, totp
from app.auth.models import Role
from app.auth.services import create_token
from app.campaigns.services import record_action
from app.db import utcnow
from app.extensions import db
from app.links.tokens import LinkClaims
from app.mailings.abtest.design import configure_ab_test
from app.mailings.delivery.launch import request_send, start_mailing
from app.mailings.models import AbTest, Delivery, DeliveryStatus, Mailing, MailingStatus
from app.supporters import groups, importer, uploads
from app.supporters.models import ListMembership
from app.tracking.machine import Verdict
from app.tracking.models import EventKind
from app.tracking.services import record_event
from tests.browser_support import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, needs_chromium
from tests.factories import (
    make_campaign,
    make_delivery,
    make_list,
    make_mailing,
    make_sent_mailing,
    make_supporter,
    make_supporters,
)
from tests.staff.conftest import PASSWORD

pytestmark = [pytest.mark.integration, needs_chromium]

BLOCKING = {"serious", "critical"}
SCREENSHOTS = ARTIFACTS / "staff"
PHONE = {"width": 375, "height": 812}

# GET routes that are not pages a person reads on their own, each with the reason.
NOT_PAGES = {
    "staff_dashboard.live": "htmx fragment: the dashboard's sending section, checked in it",
    "staff_mailings.progress": "htmx fragment of the mailing page, checked in it",
    "staff_imports.progress": "htmx fragment of the import page, checked in it",
    "staff_imports.errors_csv": "a CSV download",
    "staff_results.export": "a CSV download (a mailing's deliveries, events or links)",
    "staff_reports.comparison_csv": "a CSV download (the mailings compared)",
    "staff_reports.campaign_csv": "a CSV download (a table of the campaign report)",
    "staff_mailings.preview": (
        "the mail's own HTML for the preview iframes; tests/mailers/test_render_accessibility.py"
        " checks the mail"
    ),
}
# Pages the signed-in walk cannot reach, checked by the other tests in this file.
CHECKED_ELSEWHERE = {
    "staff_account.login": "signed out, in test_sign_in_page_is_accessible_and_keyboard_usable",
    "staff_account.login_code": "only mid sign-in, in test_two_factor_sign_in_page_is_accessible",
}
# Where the draft mailing (the default `mailing_id`) is not the row a page is for.
PER_PAGE_ARGUMENTS = {
    "staff_results.mailing": {"mailing_id": "sent_mailing_id"},
    "staff_account.reset_password": {"token": "reset_token"},
}
# Pages worth a second look in another state: (endpoint, screenshot suffix, arguments, status).
SECOND_LOOKS = [
    ("staff_mailings.show", "sent", {"mailing_id": "sent_mailing_id"}, 200),
    ("staff_mailings.show", "scheduled", {"mailing_id": "scheduled_mailing_id"}, 200),
    # An A/B test set up on a draft (its variants, previews with the variant switch, the split
    # on the check page), and one waiting for its winner (figures, "Send B to the rest").
    ("staff_mailings.ab_test", "configured", {"mailing_id": "ab_draft_mailing_id"}, 200),
    ("staff_mailings.show", "ab-draft", {"mailing_id": "ab_draft_mailing_id"}, 200),
    ("staff_mailings.check", "ab-draft", {"mailing_id": "ab_draft_mailing_id"}, 200),
    ("staff_mailings.show", "ab-waiting", {"mailing_id": "ab_sending_mailing_id"}, 200),
    ("staff_results.mailing", "ab-waiting", {"mailing_id": "ab_sending_mailing_id"}, 200),
    ("staff_account.reset_password", "bad-link", {"token": "forged_token"}, 400),
]
# Forms sent back with their errors: (screenshot name, path, {field selector: value}, button).
FORMS_WITH_ERRORS = [
    ("invite-errors", "/staff/admin/users/invite", {"#email": "x"}, "Send the invitation"),
    ("two-factor-errors", "/staff/account/two-factor", {"#code": "x"}, "Turn on two-factor"),
    ("mailing-errors", "/staff/mailings/new", {"#body_mjml": "<mj-section>{{ x.y }}"}, "Create"),
    (
        "ab-test-errors",
        "/staff/mailings/{mailing_id}/ab-test",
        {"#test_percent": "1", "#variants-0-subject": "{{ x.y }}"},
        "Set up the A/B test",
    ),
    ("segment-errors", "/staff/supporters/segments/new", {}, "Save segment"),
    ("upload-errors", "/staff/imports/new", {}, "Upload and preview"),
    ("list-errors", "/staff/supporters/lists", {}, "Create list"),
    ("supporter-errors", "/staff/supporters/{supporter_id}/edit", {"#tags": "x" * 101}, "Save"),
    ("erase-errors", "/staff/supporters/{supporter_id}/erase", {"#confirm_email": "no"}, "Erase"),
]


@dataclass
class Seeded:
    """The ids the walk builds URLs from, named as the rules name their arguments."""

    values: dict[str, object]
    admin_email: str
    two_factor_email: str
    two_factor_secret: str


def seed_one_of_everything(settings, make_staff_user) -> Seeded:
    network = make_list()
    supporter = make_supporter(tags=["Volunteers"])
    db.session.add(ListMembership(list_id=network.id, supporter_id=supporter.id))
    [tag] = supporter.tags
    segment = groups.create_segment(
        {"name": "Network", "definition": {"include_lists": [network.id]}}
    )
    draft = make_mailing(network)
    sent = make_sent_mailing()
    scheduled = make_mailing(
        network,
        name="Scheduled alert",
        status=MailingStatus.SCHEDULED,
        scheduled_at=utcnow() + timedelta(days=3),
    )
    make_delivery(sent, supporter, "<seeded@clarion.test>")
    campaign = make_campaign(
        targets=[
            {
                "name": "Todd Lyons",
                "salutation": "Dear Acting Director Lyons",
                "email": "todd.lyons@ice.example",
            },
            {
                "name": "Kristi Noem",
                "title": "Secretary",
                "salutation": "Dear Secretary Noem",
                "postal_address": "2707 Martin Luther King Jr. Avenue, SE\nWashington, DC 20528",
            },
        ]
    )
    record_action(campaign, supporter, channel="email")  # a letter by email, one for the post
    postal_target = campaign.targets[1]
    admin = make_staff_user(Role.ADMIN, name="Ada Admin")
    campaigner = make_staff_user(Role.CAMPAIGNER, name="Cam Campaigner")
    make_staff_user(Role.ANALYST, name="Ann Analyst")
    two_factor = make_staff_user(Role.CAMPAIGNER, name="Tove Two-factor")
    two_factor.totp_secret = totp.new_totp_secret()
    token, _ = create_token("CRM", Role.ANALYST)
    audit.record("cli", "mailing_sent", subject_type="mailing", subject_id=sent.id)
    audit.record("cli", "token_created", subject_type="api_token", subject_id=token.id)
    db.session.flush()
    values = {
        "mailing_id": draft.id,
        "sent_mailing_id": sent.id,
        "scheduled_mailing_id": scheduled.id,
        "campaign_id": campaign.id,
        "target_id": postal_target.id,
        "supporter_id": supporter.id,
        "user_id": campaigner.id,
        "token_id": token.id,
        "list_id": network.id,
        "tag_id": tag.id,
        "segment_id": segment.id,
        "reset_token": accounts.make_reset_token(campaigner, settings.secret_keys),
        "forged_token": "forged",
    }
    db.session.commit()
    values |= seed_ab_tests(settings)
    values["import_id"] = finished_import_with_a_rejected_row(settings)
    # An upload waiting at its preview; `token` names it.
    values["token"] = uploads.store_upload(io.BytesIO(b"email\nann@example.org\n"), settings).stem
    return Seeded(values, admin.email, two_factor.email, two_factor.totp_secret)


def seed_ab_tests(settings) -> dict[str, int]:
    """A draft with an A/B test, and a sent test waiting for staff to pick (committed)."""
    audience = make_list("A/B audience")
    make_supporters(6, mailing_list=audience, prefix="ab")
    variants = [{}, {"subject": "Three children wait, {{ first_name | default('friend') }}"}]
    mailings = {}
    for key, selection in (("ab_draft_mailing_id", "auto"), ("ab_sending_mailing_id", "manual")):
        mailing = make_mailing(audience, name=f"A/B {selection}")
        configure_ab_test(
            mailing,
            {"test_fraction": 0.5, "wait_minutes": 240, "selection": selection, "metric": "opens"}
            | {"variants": variants},
            actor="staff:seed",
        )
        mailings[key] = mailing.id
    db.session.commit()
    sending = db.session.get(Mailing, mailings["ab_sending_mailing_id"])
    request_send(sending, settings)
    db.session.commit()
    assert start_mailing(sending.id, settings)
    # As if the test share was sent, a person opened B, and the wait is over.
    tested = Delivery.variant_id.is_not(None) & (Delivery.mailing_id == sending.id)
    db.session.execute(
        update(Delivery).where(tested).values(status=DeliveryStatus.SENT, sent_at=utcnow())
    )
    b = sending.variants[1]
    opener = db.session.scalar(select(Delivery.supporter_id).where(Delivery.variant_id == b.id))
    record_event(
        EventKind.OPEN,
        LinkClaims(sending.id, opener),
        Verdict(machine=False, reason="", ua_class="browser"),
    )
    db.session.execute(
        update(AbTest)
        .where(AbTest.mailing_id == sending.id)
        .values(decide_at=utcnow(), note="The test is over: pick the winner.")
    )
    db.session.commit()
    return mailings


def finished_import_with_a_rejected_row(settings) -> int:
    path = settings.import_dir / "seeded-members.csv"
    path.write_text("email,first_name\nann@example.org,Ann\nnot an address,Bad\n")
    done = importer.import_file(path, settings=settings, created_by="staff:seed")
    assert done.rejected_count == 1, "the seeded import should reject its bad row"
    return done.id


def staff_get_rules(app):
    return sorted(
        (
            rule
            for rule in app.url_map.iter_rules()
            if rule.endpoint.startswith("staff_") and "GET" in rule.methods
        ),
        key=lambda rule: rule.endpoint,
    )


def pages_to_walk(app, seeded: Seeded) -> tuple[list[tuple[str, str, int]], list[str]]:
    """Return ([(screenshot name, path, status)], [endpoints the walk cannot build a URL for])."""
    pages, unbuildable = [], []
    looks = [(rule.endpoint, rule.endpoint, {}, 200) for rule in staff_get_rules(app)]
    looks += [(endpoint, f"{endpoint}-{suffix}", *rest) for endpoint, suffix, *rest in SECOND_LOOKS]
    rules = {rule.endpoint: rule for rule in staff_get_rules(app)}
    for endpoint, name, named, status in looks:
        if endpoint in NOT_PAGES or endpoint in CHECKED_ELSEWHERE:
            continue
        named = {**PER_PAGE_ARGUMENTS.get(endpoint, {}), **named}
        missing = [
            arg for arg in rules[endpoint].arguments if named.get(arg, arg) not in seeded.values
        ]
        if missing:
            unbuildable.append(f"{endpoint} (no seeded value for {', '.join(missing)})")
            continue
        arguments = {arg: seeded.values[named.get(arg, arg)] for arg in rules[endpoint].arguments}
        with app.test_request_context():
            pages.append((name, url_for(endpoint, **arguments), status))
    return pages, unbuildable


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def seeded(settings, make_staff_user) -> Seeded:
    return seed_one_of_everything(settings, make_staff_user)


def problems_on(page) -> list[str]:
    """Serious/critical axe violations, a missing or doubled <h1>, a missing <title>."""
    from axe_playwright_python.sync_playwright import Axe

    violations = Axe().run(page).response["violations"]
    found = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:4]}"
        for v in violations
        if v["impact"] in BLOCKING
    ]
    if (headings := page.locator("h1").count()) != 1:
        found.append(f"{headings} <h1> elements, not one")
    if not page.title().strip():
        found.append("no <title>")
    return found


def check(page, url: str, name: str, status: int = 200) -> list[str]:
    response = page.goto(url, wait_until="load")
    if response is None or response.status != status:
        return [f"answered {response.status if response else 'nothing'}, not {status}"]
    if page.url != url:
        return [f"went on to {page.url}"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)
    return problems_on(page)


def submit_with_errors(page, url: str, fields: dict, button: str, name: str) -> list[str]:
    page.goto(url)
    for selector, value in fields.items():
        page.fill(selector, value)

    # The form's own POST, not one htmx sends meanwhile (a live preview or count of what was
    # typed): caught by mistake, it made this check flaky.
    def form_post(response) -> bool:
        request = response.request
        return request.method == "POST" and request.headers.get("hx-request") != "true"

    with page.expect_response(form_post) as answer:
        page.get_by_role("button", name=button).click()
    page.wait_for_load_state()
    if answer.value.status != 422 or not page.locator(".error, .error-summary").count():
        return [f"answered {answer.value.status} without errors shown"]
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)
    return problems_on(page)


def sign_in(page, base_url: str, email: str) -> None:
    page.goto(f"{base_url}/staff/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def test_the_walk_knows_every_staff_get_route(app):
    """Skip lists name real GET routes only, so a removed page does not hide a renamed one."""
    endpoints = {rule.endpoint for rule in staff_get_rules(app)}
    assert set(NOT_PAGES) | set(CHECKED_ELSEWHERE) <= endpoints
    assert {"staff_dashboard.index", "staff_admin.index", "staff_campaigns.show"} <= endpoints


def test_every_staff_page_passes_axe_with_one_h1_and_a_title(app, live, browser, seeded):
    pages, unbuildable = pages_to_walk(app, seeded)
    assert unbuildable == [], "seed a row for these pages, or list them in NOT_PAGES with why"
    page = browser.new_page()
    sign_in(page, live.url, seeded.admin_email)
    assert page.url == f"{live.url}/staff/", "the admin did not reach the dashboard"
    found = {name: check(page, live.url + path, name, status) for name, path, status in pages}
    assert {name: problems for name, problems in found.items() if problems} == {}
    assert len(found) >= 40  # the walk really went round the staff app

    for name, path, fields, button in FORMS_WITH_ERRORS:
        url = live.url + path.format(**seeded.values)
        assert submit_with_errors(page, url, fields, button, name) == [], name

    # The API token's one showing of its secret.
    page.goto(f"{live.url}/staff/admin/tokens")
    page.fill("#name", "Backup")
    page.get_by_role("button", name="Create the token").click()
    page.wait_for_load_state()
    assert page.locator("input.token-secret").count() == 1
    page.screenshot(path=SCREENSHOTS / "staff_admin.token_created-secret.png", full_page=True)
    assert problems_on(page) == []

    # The skip link comes first, before the navigation, and lands on the page's content.
    page.goto(f"{live.url}/staff/supporters/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "content"

    # At phone width the page still passes, and nothing makes it scroll sideways.
    page.set_viewport_size(PHONE)
    draft_page = f"{live.url}/staff/mailings/{seeded.values['mailing_id']}"
    assert check(page, draft_page, "staff_mailings.show-phone") == []
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_first_run_empty_pages_are_accessible(app, live, browser, make_staff_user):
    """Before anything is imported or sent, each area shows its empty state."""
    admin = make_staff_user(Role.ADMIN)
    db.session.commit()
    page = browser.new_page()
    sign_in(page, live.url, admin.email)
    areas = ["staff_dashboard.index", "staff_supporters.index", "staff_mailings.index"]
    areas += ["staff_campaigns.index", "staff_imports.index", "staff_results.index"]
    with app.test_request_context():
        paths = {f"{endpoint}-empty": url_for(endpoint) for endpoint in areas}
    found = {name: check(page, live.url + path, name) for name, path in paths.items()}
    assert {name: problems for name, problems in found.items() if problems} == {}
    page.goto(f"{live.url}/staff/supporters/")
    assert page.locator(".empty").count() == 1  # the directory's first-run page, not a table


def test_sign_in_page_is_accessible_and_keyboard_usable(live, browser):
    page = browser.new_page()
    assert check(page, f"{live.url}/staff/login", "staff_account.login") == []
    order = []
    for _ in range(6):
        page.keyboard.press("Tab")
        order.append(page.evaluate("(e => e.name || e.textContent.trim())(document.activeElement)"))
    assert order[:4] == ["Skip to content", "email", "password", "Sign in"], order
    assert "Forgot your password?" in order


def test_two_factor_sign_in_page_is_accessible(live, browser, seeded):
    page = browser.new_page()
    sign_in(page, live.url, seeded.two_factor_email)
    assert page.url.startswith(f"{live.url}/staff/login/code")
    assert problems_on(page) == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "staff_account.login_code.png", full_page=True)
    page.get_by_label("Six-digit code").fill(pyotp.TOTP(seeded.two_factor_secret).now())
    page.get_by_label("Six-digit code").press("Enter")
    page.wait_for_load_state()
    assert page.url == f"{live.url}/staff/"


def test_the_check_catches_what_it_is_for(live, browser):
    """A nameless button, faint text and a second <h1> on a real page are all reported."""
    page = browser.new_page()
    page.goto(f"{live.url}/staff/login")
    page.evaluate(
        """() => document.querySelector("main").insertAdjacentHTML("beforeend",
        '<button></button><p style="color:#bbb">faint</p><h1>Again</h1>')"""
    )
    problems = " ".join(problems_on(page))
    assert "button-name (critical)" in problems
    assert "color-contrast (serious)" in problems
    assert "2 <h1> elements" in problems
