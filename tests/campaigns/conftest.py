"""Fixtures for campaign tests: an open letter campaign, a sent mailing that links to it.

Also the public form helpers and `live`, the real app served to a browser (tests/browser_support.py).
"""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import select

from app.campaigns.guards import started_stamp
from app.campaigns.models import PendingAction
from app.extensions import db
from app.links.tokens import ConfirmTokens

# The factories live in tests/factories.py: import them from there. LETTER and make_supporter
# stay importable from here too (with the factories this module uses) for tests written against
# the old place, tests/staff/ among them.
from tests.factories import (  # noqa: F401
    LETTER,
    ActionRecipient,
    make_campaign,
    make_recipient,
    make_supporter,
)


@pytest.fixture
def campaign():
    return make_campaign()


@pytest.fixture
def recipient(settings, campaign) -> ActionRecipient:
    return make_recipient(settings, campaign)


def form_of(html: str) -> dict:
    """Return the hidden fields and the textarea of the page's form."""
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))
    textarea = re.search(r"<textarea[^>]*>(.*?)</textarea>", html, re.S)
    if textarea:
        import html as html_lib

        fields["letter"] = html_lib.unescape(textarea.group(1))
    return fields


def aged(form: dict, settings, form_url: str, seconds: float = 10) -> dict:
    """Return the form as if its page had been shown `seconds` ago (a person, not a script)."""
    return {**form, "started": started_stamp(settings.secret_keys, form_url, time.time() - seconds)}


def public_form(client, settings, slug: str, **fields) -> dict:
    """Return the public page's form, shown long enough ago, with `fields` filled in."""
    path = f"/campaigns/{slug}"
    return {**aged(form_of(client.get(path).get_data(as_text=True)), settings, path), **fields}


def pending_for(email: str) -> list[PendingAction]:
    return db.session.scalars(
        select(PendingAction).where(PendingAction.email == email).order_by(PendingAction.id)
    ).all()


def confirm_path(settings, pending: PendingAction) -> str:
    return f"/confirm/{ConfirmTokens(settings.secret_keys).dumps(pending.id)}"
