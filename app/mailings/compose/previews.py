"""Preview a mailing as a supporter and test-send it: render and send, store and count nothing."""

from __future__ import annotations

from jinja2 import TemplateError

from app.config import Settings
from app.links.tokens import TokenService
from app.mailings.abtest.assignment import sources_of_variant
from app.mailings.compose.recipients import build_factory, sender_of
from app.mailings.compose.rendering import (
    Mode,
    Person,
    freeze_sources,
    frozen_of,
    in_mode,
    recipient_in,
    render_for,
    sample_person,
    sources_of,
)
from app.mailings.compose.schemas import MAX_TEST_ADDRESSES
from app.mailings.compose.services import MailingError, address_problem
from app.mailings.delivery.launch import known_custom_fields
from app.mailings.models import Mailing, MailingVariant
from app.supporters.models import Supporter
from mailers.message import Recipient
from mailers.render import FreezeError, FrozenMailing
from mailers.transport import DeliveryError, SmtpTransport, TemporaryFailure


def preview(
    mailing: Mailing,
    supporter: Supporter | None,
    settings: Settings,
    variant: MailingVariant | None = None,
) -> dict:
    """Render the mailing (or one A/B variant) as `supporter` (or a sample person) would get
    it, changing nothing.

    Links go straight to their destinations and the open pixel is inert, so opening a preview
    records neither a click nor an open.
    """
    person = Person.of(supporter) if supporter else sample_person()
    frozen = frozen_for_preview(mailing, settings, variant)
    try:
        rendered = render_for(frozen, mailing.id, person, Mode.PREVIEW, settings)
    except TemplateError as exc:  # e.g. a filter that cannot take this supporter's value
        raise MailingError(f"The mailing cannot be rendered for this supporter: {exc}") from exc
    return {"subject": rendered.subject, "html": rendered.html, "text": rendered.text}


def test_send(
    mailing: Mailing,
    addresses: list[str],
    settings: Settings,
    supporter: Supporter | None = None,
    variant: MailingVariant | None = None,
) -> list[dict]:
    """Send "[TEST] " copies to a few addresses now; no deliveries, nothing counted.

    Merge fields come from `supporter` or a sample person. Returns one result per address;
    SMTP refusals are reported there, not raised.
    """
    addresses = _test_addresses(addresses)
    frozen = in_mode(frozen_for_preview(mailing, settings, variant), Mode.TEST)
    try:
        factory = build_factory(mailing, settings, frozen, variant)
    except ValueError as exc:  # a sender or unsubscribe address headers cannot carry
        raise MailingError(f"The message cannot be built: {exc}") from exc
    _, envelope_from = sender_of(mailing, settings)
    tokens = TokenService(settings.secret_keys)
    results = []
    with SmtpTransport(settings.smtp) as transport:
        for address in addresses:
            person = Person.of(supporter, address) if supporter else sample_person(address)
            recipient = recipient_in(Mode.TEST, mailing.id, person, settings, tokens)
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


def frozen_for_preview(
    mailing: Mailing, settings: Settings, variant: MailingVariant | None = None
) -> FrozenMailing:
    """Return the mailing (or the variant) frozen: as stored once it was, else freshly and
    without storing it."""
    if mailing.frozen_at is not None:
        return frozen_of(mailing, variant)
    sources = sources_of_variant(mailing, variant) if variant else None
    try:
        return freeze_sources(
            sources or sources_of(mailing),
            organisation_name=settings.organisation_name,
            postal_address=settings.postal_address,
            custom_fields=known_custom_fields(),
        )
    except FreezeError as exc:
        raise MailingError(str(exc), {"body_mjml": [str(exc)]}) from exc
