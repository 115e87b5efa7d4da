"""Preview a mailing as a supporter and test-send it: render and send, store and count nothing."""

from __future__ import annotations

import html
import re
from types import SimpleNamespace

from jinja2 import TemplateError

from app.config import Settings
from app.links.tokens import TokenService
from app.links.urls import INERT_PIXEL_URL
from app.mailings.launch import freeze_mailing
from app.mailings.models import Mailing
from app.mailings.recipients import (
    build_factory,
    frozen_of,
    recipient_for,
    recipient_from_fields,
    sender_of,
    supporter_fields,
)
from app.mailings.schemas import MAX_TEST_ADDRESSES
from app.mailings.services import EDITABLE, MailingError, address_problem
from app.supporters.models import Supporter
from mailers.message import Recipient, merge_context
from mailers.render import FreezeError
from mailers.transport import DeliveryError, SmtpTransport, TemporaryFailure

TEST_PREFIX = "[TEST] "
# Test messages carry tokens for supporter 0, which never exists: their action, unsubscribe and
# preferences links lead to real pages but cannot act for, or unsubscribe, anyone.
TEST_SUPPORTER_ID = 0
_CLICK_URL = re.compile(r"\{\{ click_url \}\}/(\d+)")


def preview(mailing: Mailing, supporter: Supporter | None, settings: Settings) -> dict:
    """Render the mailing as `supporter` (or a sample person) would get it, changing nothing.

    Links go straight to their destinations and the open pixel is inert, so opening a preview
    records neither a click nor an open.
    """
    copy = _untracked(_frozen_copy(mailing, settings))
    frozen = frozen_of(copy)
    person = supporter or sample_supporter()
    recipient = recipient_for(mailing, person, settings, TokenService(settings.secret_keys))
    recipient.urls["open_url"] = INERT_PIXEL_URL
    context = merge_context(recipient)
    try:
        return {
            "subject": " ".join(frozen.subject_template.render(context).split()),
            "html": frozen.html_template.render(context).replace("\r\n", "\n"),
            "text": frozen.text_template.render(context).replace("\r\n", "\n"),
        }
    except TemplateError as exc:  # e.g. a filter that cannot take this supporter's value
        raise MailingError(f"The mailing cannot be rendered for this supporter: {exc}") from exc


def sample_supporter(email: str = "jane.example@example.org") -> Supporter:
    """Return an unsaved stand-in supporter for previews and test sends."""
    return Supporter(id=TEST_SUPPORTER_ID, email=email, first_name="Jane", last_name="Example")


def test_send(
    mailing: Mailing,
    addresses: list[str],
    settings: Settings,
    supporter: Supporter | None = None,
) -> list[dict]:
    """Send "[TEST] " copies to a few addresses now; no deliveries, nothing counted.

    Merge fields come from `supporter` or a sample person. Returns one result per address;
    SMTP refusals are reported there, not raised.
    """
    addresses = _test_addresses(addresses)
    copy = _untracked(_frozen_copy(mailing, settings))
    try:
        factory = build_factory(copy, settings)
    except ValueError as exc:  # a sender or unsubscribe address headers cannot carry
        raise MailingError(f"The message cannot be built: {exc}") from exc
    _, envelope_from = sender_of(mailing, settings)
    tokens = TokenService(settings.secret_keys)
    results = []
    with SmtpTransport(settings.smtp) as transport:
        for address in addresses:
            person = supporter or sample_supporter(address)
            recipient = recipient_from_fields(
                mailing.id,
                TEST_SUPPORTER_ID,
                address,
                supporter_fields(person),
                settings,
                tokens,
                subject_prefix=TEST_PREFIX,
            )
            recipient.urls["open_url"] = INERT_PIXEL_URL
            results.append(_send_one(factory, transport, envelope_from, recipient))
            if results[-1].get("unreachable"):
                # The server is down: say so for the rest instead of waiting on each in turn.
                error = results[-1]["error"]
                results += [_result(a, error=error) for a in addresses[len(results) :]]
                break
    for result in results:
        result.pop("unreachable", None)
    return results


test_send.__test__ = False  # not a pytest test, whatever its name


def _send_one(factory, transport, envelope_from: str, recipient: Recipient) -> dict:
    try:
        built = factory.build(recipient)
    except (ValueError, TemplateError) as exc:  # e.g. a base URL that is not https
        return _result(recipient.email, error=f"could not build the message: {exc}")
    try:
        transport.send(envelope_from, recipient.email, built.data)
    except DeliveryError as exc:
        result = _result(recipient.email, error=str(exc))
        result["unreachable"] = isinstance(exc, TemporaryFailure) and exc.code is None
        return result
    return _result(recipient.email, message_id=built.message_id)


def _result(address: str, *, message_id: str | None = None, error: str | None = None) -> dict:
    return {"address": address, "ok": error is None, "message_id": message_id, "error": error}


def _test_addresses(addresses: list[str]) -> list[str]:
    cleaned = list(dict.fromkeys(a.strip() for a in addresses if a and a.strip()))
    if not cleaned:
        raise MailingError("Give at least one address.", {"to": ["No addresses given."]})
    if len(cleaned) > MAX_TEST_ADDRESSES:
        raise MailingError(
            f"A test goes to at most {MAX_TEST_ADDRESSES} addresses.",
            {"to": [f"{len(cleaned)} addresses given; the most is {MAX_TEST_ADDRESSES}."]},
        )
    problems = [p for p in map(address_problem, cleaned) if p]
    if problems:
        raise MailingError("Some addresses are not usable.", {"to": problems})
    return cleaned


def _frozen_copy(mailing: Mailing, settings: Settings) -> SimpleNamespace:
    """Return a frozen, unsaved stand-in for `mailing`: stored sources if frozen, else fresh."""
    copy = SimpleNamespace(**{key: getattr(mailing, key) for key in EDITABLE}, id=mailing.id)
    if mailing.frozen_at is not None:
        copy.frozen_subject = mailing.frozen_subject
        copy.frozen_html = mailing.frozen_html
        copy.frozen_text = mailing.frozen_text
        copy.links = list(mailing.links)
        return copy
    try:
        freeze_mailing(copy, settings)
    except FreezeError as exc:
        raise MailingError(str(exc), {"body_mjml": [str(exc)]}) from exc
    return copy


def _untracked(copy: SimpleNamespace) -> SimpleNamespace:
    """Point the copy's tracked links straight at their destinations."""
    destinations = {link.position: link.url for link in copy.links}

    def direct(escape):
        def replace(match: re.Match) -> str:
            url = destinations.get(int(match.group(1)))
            if url is None or "{" in url or "}" in url:
                return match.group()  # would read as a template tag: leave it tracked
            return escape(url)

        return replace

    copy.frozen_html = _CLICK_URL.sub(direct(html.escape), copy.frozen_html)
    copy.frozen_text = _CLICK_URL.sub(direct(str), copy.frozen_text)
    return copy
