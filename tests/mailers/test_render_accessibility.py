"""The mail as a supporter's browser shows it ("view in browser", webmail) passes axe-core.

The message is built by the same freeze + MessageFactory path that sends it, then loaded into
Debian's Chromium with every network request refused (its images and pixel point at example
hosts). Skipped only where /usr/bin/chromium is missing.
"""

from __future__ import annotations

import email
import email.policy

import pytest

from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, needs_chromium
from tests.mailers.conftest import freeze_mailing, make_factory, make_recipient

# The subject `clarion demo load` gives the demo mailing: merge fields end up in the <title>.
DEMO_SUBJECT = '{{ first_name | default("Friend") }}, 28 children could be deported within days'
BLOCKING = {"serious", "critical"}

pytestmark = [pytest.mark.integration, needs_chromium]


def rendered_html(layout: str, subject: str | None) -> str:
    frozen = freeze_mailing(subject, "ICE can stop these deportations today.", layout=layout)
    data = make_factory(frozen).build(make_recipient(first_name="Zoë")).data
    message = email.message_from_bytes(data, policy=email.policy.default)
    return message.get_body(("html",)).get_content()


@pytest.fixture(scope="module")
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.route("**/*", lambda route: route.abort())
            yield page
        finally:
            browser.close()


@pytest.mark.parametrize(
    ("layout", "subject", "title"),
    [
        ("demo_28_children", DEMO_SUBJECT, "Zoë, 28 children could be deported within days"),
        ("action_alert", None, "Zoë, your action is needed today"),  # the layout's subject
    ],
)
def test_mail_has_no_serious_or_critical_axe_violations(page, layout, subject, title):
    from axe_playwright_python.sync_playwright import Axe

    page.set_content(rendered_html(layout, subject), wait_until="domcontentloaded")
    assert page.title() == title
    assert page.evaluate("document.documentElement.lang") == "en"
    violations = Axe().run(page).response["violations"]
    blocking = [
        (v["id"], v["impact"], v["help"], [n["target"] for n in v["nodes"]][:3])
        for v in violations
        if v["impact"] in BLOCKING
    ]
    assert blocking == []
    # The landmark rules are only "moderate", but a screen reader uses them to skip the chrome.
    assert not {v["id"] for v in violations} & {"landmark-one-main", "region", "document-title"}
