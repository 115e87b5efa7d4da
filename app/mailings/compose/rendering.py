"""One way to render a mailing for one person: freeze it once, then render it in a mode.

The mode alone decides which URLs a rendering carries; nothing mutates a frozen mailing or a
recipient afterwards:

- SEND: the recipient's own signed links, tracked clicks and the open pixel.
- TEST: links signed for supporter 0, who never exists (they open real pages but act for and
  unsubscribe nobody), clicks straight to their destinations, an inert pixel, "[TEST] " subject.
- PREVIEW: the person's own signed links, clicks straight to their destinations, inert pixel.
- BROWSER ("view in browser", /v/): the recipient's own links, tracked clicks, inert pixel: a
  look at the mail in the browser is not an open.

Sending renders through MessageFactory (straight to quoted-printable bytes) with the same
`in_mode` and `recipient_in` that `render_for` uses, so the per-message work stays merging
values and signing links.
"""

from __future__ import annotations

import enum
import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from app.config import PROJECT_ROOT, Settings
from app.links.tokens import TokenService
from app.links.urls import INERT_PIXEL_URL, recipient_urls
from app.mailings.models import Mailing, MailingVariant
from app.supporters.models import Supporter
from mailers.merge import allowed_fields
from mailers.message import Recipient, merge_context
from mailers.render import FrozenMailing, freeze

TEMPLATES_DIR = PROJECT_ROOT / "templates" / "emails"
TEST_PREFIX = "[TEST] "
# Test messages carry tokens for supporter 0, which never exists: their action, unsubscribe and
# preferences links lead to real pages but cannot act for, or unsubscribe, anyone.
TEST_SUPPORTER_ID = 0
# What a mailing is frozen from: the fields staff edit that decide its content.
SOURCE_FIELDS = ("subject", "preheader", "body_mjml", "body_text", "layout")
_CLICK_URL = re.compile(r"\{\{ click_url \}\}/(\d+)")


class Mode(enum.StrEnum):
    SEND = "send"
    TEST = "test"
    PREVIEW = "preview"
    BROWSER = "browser"


# Modes whose clicks go straight to the destination instead of through /c/ (nothing counted).
_UNTRACKED_CLICKS = frozenset({Mode.TEST, Mode.PREVIEW})


@dataclass(frozen=True, slots=True)
class Person:
    """Whom a mailing is rendered for: plain values, no ORM object."""

    supporter_id: int
    email: str
    fields: dict

    @classmethod
    def of(cls, supporter: Supporter, email: str | None = None) -> Person:
        return cls(supporter.id, email or supporter.email, supporter_fields(supporter))


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    html: str
    text: str


def supporter_fields(supporter: Supporter) -> dict:
    """Return the merge fields of a supporter: custom fields first, standard fields win."""
    fields = dict(supporter.custom_fields or {})
    fields.update(
        first_name=supporter.first_name,
        last_name=supporter.last_name,
        email=supporter.email,
        postcode=supporter.postcode,
        country=supporter.country,
        language=supporter.language,
    )
    return fields


def sample_person(email: str = "jane.example@example.org") -> Person:
    """Return the sample person previews and test sends use when no supporter is given."""
    fields = dict.fromkeys(("postcode", "country", "language"))
    fields.update(first_name="Jane", last_name="Example", email=email)
    return Person(TEST_SUPPORTER_ID, email, fields)


def sources_of(mailing: Mailing) -> dict:
    """Return the fields a mailing is frozen from."""
    return {key: getattr(mailing, key) for key in SOURCE_FIELDS}


def freeze_sources(
    sources: Mapping[str, str | None],
    *,
    organisation_name: str | None,
    postal_address: str | None,
    custom_fields: Iterable[str],
) -> FrozenMailing:
    """Freeze a mailing's sources into its templates and links; reads and changes nothing else.

    organisation_name and postal_address None check that the mailing renders before the
    organisation's own are known (they are checked when it is sent).
    """
    return freeze(
        *(sources.get(key) for key in SOURCE_FIELDS),
        organisation_name=organisation_name,
        postal_address=postal_address,
        templates_dir=TEMPLATES_DIR,
        allowed_fields=allowed_fields(set(custom_fields)),
    )


def frozen_of(mailing: Mailing, variant: MailingVariant | None = None) -> FrozenMailing:
    """Rebuild a frozen mailing (or one A/B variant of it, None: the mailing itself) from the
    sources and links stored when it was frozen.

    A variant stores only what it changes; the rest is the mailing's.
    """
    return FrozenMailing.from_sources(
        (variant and variant.frozen_subject) or mailing.frozen_subject,
        (variant and variant.frozen_html) or mailing.frozen_html,
        (variant and variant.frozen_text) or mailing.frozen_text,
        [(link.position, link.url, link.is_honeypot) for link in mailing.links],
    )


def in_mode(frozen: FrozenMailing, mode: Mode) -> FrozenMailing:
    """Return the frozen mailing as `mode` renders it: untracked clicks for test and preview."""
    if mode not in _UNTRACKED_CLICKS:
        return frozen
    destinations = {link.position: link.url for link in frozen.links}

    def direct(escape):
        def replace(match: re.Match) -> str:
            url = destinations.get(int(match.group(1)))
            if url is None or "{" in url or "}" in url:
                return match.group()  # would read as a template tag: leave it tracked
            return escape(url)

        return replace

    return FrozenMailing.from_sources(
        frozen.subject_source,
        _CLICK_URL.sub(direct(html.escape), frozen.html_source),
        _CLICK_URL.sub(direct(str), frozen.text_source),
        frozen.links,
    )


def recipient_in(
    mode: Mode, mailing_id: int, person: Person, settings: Settings, tokens: TokenService
) -> Recipient:
    """Return the recipient `mode` renders for: whose links are signed, and the open pixel."""
    signed_for = TEST_SUPPORTER_ID if mode is Mode.TEST else person.supporter_id
    urls = recipient_urls(settings.base_url, tokens, mailing_id, signed_for)
    if mode is not Mode.SEND:
        urls["open_url"] = INERT_PIXEL_URL  # only a sent mail's opens are counted
    return Recipient(
        email=person.email,
        fields=person.fields,
        urls=urls,
        unsubscribe_token=urls.pop("unsubscribe_token"),
        subject_prefix=TEST_PREFIX if mode is Mode.TEST else "",
    )


def render_for(
    frozen: FrozenMailing,
    mailing_id: int,
    person: Person,
    mode: Mode,
    settings: Settings,
    tokens: TokenService | None = None,
) -> Rendered:
    """Render subject, HTML and text of a frozen mailing for one person in one mode.

    Line breaks are LF (the message bytes carry CRLF); the subject is on one line as its
    header shows it. Raises jinja2.TemplateError if a filter cannot take a person's value.
    """
    shown = in_mode(frozen, mode)
    recipient = recipient_in(
        mode, mailing_id, person, settings, tokens or TokenService(settings.secret_keys)
    )
    context = merge_context(recipient)
    subject = recipient.subject_prefix + shown.subject_template.render(context)
    return Rendered(
        subject=" ".join(subject.split()),
        html=shown.html_template.render(context).replace("\r\n", "\n"),
        text=shown.text_template.render(context).replace("\r\n", "\n"),
    )
