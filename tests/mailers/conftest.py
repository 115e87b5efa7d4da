"""Shared pieces for the mailer tests: the demo mailing, a factory and sample recipients."""

from __future__ import annotations

import pytest

from app.config import PROJECT_ROOT
from mailers.message import MessageFactory, Recipient
from mailers.render import freeze

TEMPLATES = PROJECT_ROOT / "templates" / "emails"
ORGANISATION = "Rights Watch USA"
ADDRESS = "311 W 43rd Street, 7th Floor, New York, NY 10036"
BASE = "https://act.example.org"
TOKEN = "WzQyLDEwMDFd.Zk9x2A.abcDEFghiJKLmnoPQRstu"


def freeze_mailing(subject=None, preheader=None, body_mjml=None, body_text=None, layout=None, **kw):
    """Freeze with the test organisation and the project's templates."""
    return freeze(
        subject,
        preheader,
        body_mjml,
        body_text,
        layout,
        organisation_name=kw.pop("organisation_name", ORGANISATION),
        postal_address=kw.pop("postal_address", ADDRESS),
        templates_dir=TEMPLATES,
        **kw,
    )


def make_recipient(email="zoe@example.com", subject_prefix="", token=TOKEN, **fields) -> Recipient:
    fields.setdefault("first_name", "Zoë")
    fields.setdefault("last_name", "Ñúñez")
    return Recipient(
        email=email,
        fields=fields,
        urls={
            "action_url": f"{BASE}/a/{token}",
            "unsubscribe_url": f"{BASE}/u/{token}",
            "one_click_unsubscribe_url": f"{BASE}/u/{token}/one-click",
            "preferences_url": f"{BASE}/p/{token}",
            "view_in_browser_url": f"{BASE}/v/{token}",
            "open_url": f"{BASE}/o/{token}.gif",
            "click_url": f"{BASE}/c/{token}",
        },
        unsubscribe_token=token,
        subject_prefix=subject_prefix,
    )


def make_factory(frozen, dkim=None, **overrides) -> MessageFactory:
    options = {
        "from_name": f"Elena Marsh, {ORGANISATION}",
        "from_email": "alerts@act.example.org",
        "reply_to": "info@act.example.org",
        "list_id": "action-alerts.act.example.org",
        "feedback_id": "42:alerts:clarion",
        "unsubscribe_mailto": "unsubscribe@act.example.org",
        "message_id_domain": "act.example.org",
        "dkim": dkim,
    }
    options.update(overrides)
    return MessageFactory(frozen, **options)


@pytest.fixture(scope="session")
def demo_frozen():
    return freeze_mailing(
        preheader="28 families could be deported within days", layout="demo_28_children"
    )


@pytest.fixture
def demo_factory(demo_frozen):
    return make_factory(demo_frozen)
