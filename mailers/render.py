"""Freeze a mailing once: MJML → HTML → inlined CSS → tracked links → three Jinja templates.

Everything expensive happens here, once per mailing. What comes out still holds the merge fields
and per-recipient URLs, so MessageFactory only renders three compiled templates per recipient.
"""

from __future__ import annotations

import html
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from jinja2 import Template, TemplateError
from lxml import etree
from mjml import mjml2html
from premailer import Premailer

from mailers import markup
from mailers.merge import html_env, text_env, validate_template
from mailers.text import html_to_text


class FreezeError(ValueError):
    """The mailing cannot be turned into a sendable template; the message says why."""


class FrozenLink(NamedTuple):
    position: int
    url: str
    is_honeypot: bool


HONEYPOT_POSITION = 0
_TOKEN_PREFIX = "CLRNVAR"
_JINJA_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_TOKEN = re.compile(_TOKEN_PREFIX + r"(\d+)X")
_LAYOUT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
_URL_IN_TEXT = re.compile(r"https?://[^\s<>\"']+")
_REMOTE_CSS = re.compile(r"<link\b[^>]*>|@import\b[^;]*;", re.IGNORECASE)
_ORGANISATION = re.compile(r"\{\{-?\s*organisation_name\s*-?\}\}")
_UNSUBSCRIBE_HREF = 'href="{{ unsubscribe_url }}"'
_UNSUBSCRIBE_TEXT = "{{ unsubscribe_url }}"

_DEFAULT_HEAD = """<mj-head>
  <mj-attributes>
    <mj-all font-family="Helvetica, Arial, sans-serif" />
    <mj-text font-size="16px" line-height="24px" color="#1f2933" />
  </mj-attributes>
</mj-head>"""

# The legal footer every mail carries, from the templates folder (`_footer.mjml`, `_footer.txt`):
# organisation_name and postal_address are filled in at freeze time, the links per recipient.
_FOOTER_MJML = "_footer.mjml"
_FOOTER_TEXT = "_footer.txt"
_POSTAL_ADDRESS = re.compile(r"\{\{-?\s*postal_address\s*-?\}\}")


@dataclass(frozen=True, eq=False)
class FrozenMailing:
    subject_source: str
    html_source: str
    text_source: str
    links: tuple[FrozenLink, ...]
    subject_template: Template = field(repr=False)
    html_template: Template = field(repr=False)
    text_template: Template = field(repr=False)

    @classmethod
    def from_sources(
        cls,
        subject_source: str,
        html_source: str,
        text_source: str,
        links: list[tuple[int, str, bool]] | tuple[tuple[int, str, bool], ...],
    ) -> FrozenMailing:
        """Rebuild a frozen mailing from its stored strings and links, without MJML."""
        if _UNSUBSCRIBE_HREF not in html_source or _UNSUBSCRIBE_TEXT not in text_source:
            raise FreezeError("a frozen mailing must carry an unsubscribe link in both parts")
        try:
            subject_template = text_env.from_string(subject_source)
            html_template = html_env.from_string(html_source)
            text_template = text_env.from_string(text_source)
        except TemplateError as exc:
            raise FreezeError(f"the frozen mailing does not compile: {exc}") from exc
        return cls(
            subject_source=subject_source,
            html_source=html_source,
            text_source=text_source,
            links=tuple(FrozenLink(int(p), str(u), bool(h)) for p, u, h in links),
            subject_template=subject_template,
            html_template=html_template,
            text_template=text_template,
        )


def freeze(
    subject: str | None,
    preheader: str | None,
    body_mjml: str | None,
    body_text: str | None,
    layout: str | None,
    *,
    organisation_name: str | None,
    postal_address: str | None,
    templates_dir: Path | str,
    allowed_fields: set[str] | None = None,
    honeypot_url: str | None = None,
) -> FrozenMailing:
    """Render a mailing once into subject, HTML and text templates plus its tracked links.

    With organisation_name and postal_address None (a check before the organisation's are
    known), the footer keeps them as placeholders; everything else is frozen as for sending.
    """
    templates_dir = Path(templates_dir)
    layout_parts = _load_layout(templates_dir, layout) if layout else {}
    subject = (subject or layout_parts.get("subject") or "").strip()
    body_mjml = body_mjml or layout_parts.get("body_mjml")
    body_text = body_text or layout_parts.get("body_text")
    preheader = (preheader or "").strip()
    if not subject:
        raise FreezeError("the mailing has no subject")
    if not body_mjml:
        raise FreezeError("the mailing has no body")
    for value, what in ((organisation_name, "organisation name"), (postal_address, "address")):
        if value is not None and (not value.strip() or "{" in value or "}" in value):
            raise FreezeError(f"the {what} must be set and may not contain braces")
    if allowed_fields is not None:
        _validate_all(subject, preheader, body_mjml, body_text, allowed_fields)

    tokens = _Tokens()
    for source in (preheader, body_mjml):
        if _TOKEN_PREFIX in source:
            raise FreezeError(f"the mailing may not contain the text {_TOKEN_PREFIX}")
    constants = _FreezeConstants(organisation_name, postal_address)
    # The organisation's name is the same for every recipient: fill it in now.
    subject = constants.fill(subject)
    preheader = constants.fill(preheader)
    body_mjml = constants.fill(body_mjml, html.escape)
    if body_text:
        body_text = constants.fill(body_text)
    footer_mjml = _read_footer(templates_dir, _FOOTER_MJML)
    document = _mjml_document(body_mjml, constants.fill(footer_mjml, html.escape, footer=True))
    compiled = _mjml_to_html(tokens.protect(document))
    compiled = _inline_css(_REMOTE_CSS.sub("", compiled))
    root = etree.fromstring(compiled, etree.HTMLParser())
    body = root.find(".//body")
    if body is None:
        raise FreezeError("MJML produced no <body>")
    head = root.find("head")
    if head is None:
        raise FreezeError("MJML produced no <head>")
    markup.set_title(head, tokens.protect(subject))
    markup.set_language(root)
    markup.add_main_landmark(body)

    links = _track_links(root, tokens)
    if body_text:
        footer_text = constants.fill(_read_footer(templates_dir, _FOOTER_TEXT), footer=True)
        text = body_text.strip() + "\n\n" + footer_text
        text = _track_text_links(text, links)
    else:
        text = tokens.restore(html_to_text(root))
    honeypot_target = honeypot_url or next((link.url for link in links), "")
    links.insert(0, FrozenLink(HONEYPOT_POSITION, honeypot_target, True))
    markup.add_preheader(body, tokens.protect(preheader))
    markup.add_honeypot(body, tokens.token_for(_click(HONEYPOT_POSITION)))
    markup.add_open_pixel(body, tokens.token_for("{{ open_url }}"))

    serialised = etree.tostring(root, method="html", encoding="unicode", doctype="<!DOCTYPE html>")
    tokens.check_all_present(serialised)
    html_source = tokens.restore(serialised).replace("\r\n", "\n").rstrip("\n") + "\n"
    return FrozenMailing.from_sources(subject, html_source, text, links)


class _FreezeConstants:
    """Fill in the values that are the same for every recipient (None: leave the tag)."""

    def __init__(self, organisation_name: str | None, postal_address: str | None):
        self._values = [
            (_ORGANISATION, organisation_name and organisation_name.strip()),
            (_POSTAL_ADDRESS, postal_address and postal_address.strip()),
        ]

    def fill(self, source: str, escape=str, *, footer: bool = False) -> str:
        # Staff templates may only name the organisation; the footer also carries the address.
        for tag, value in self._values if footer else self._values[:1]:
            if value is not None:
                source = tag.sub(lambda _, value=escape(value): value, source)
        return source


def _read_footer(templates_dir: Path, name: str) -> str:
    path = templates_dir / name
    if not path.is_file():
        raise FreezeError(f"the footer template {name} is missing from {templates_dir}")
    return path.read_text(encoding="utf-8")


def _click(position: int) -> str:
    return "{{ click_url }}/" + str(position)


class _Tokens:
    """Swap Jinja tags for opaque words that MJML, premailer and lxml leave alone."""

    def __init__(self) -> None:
        self._tags: list[str] = []

    def token_for(self, tag: str) -> str:
        self._tags.append(tag)
        return f"{_TOKEN_PREFIX}{len(self._tags) - 1}X"

    def protect(self, source: str) -> str:
        return _JINJA_TAG.sub(lambda match: self.token_for(match.group()), source)

    def restore(self, text: str) -> str:
        return _TOKEN.sub(lambda match: self._tags[int(match.group(1))], text)

    def tag_of(self, token: str) -> str | None:
        match = _TOKEN.fullmatch(token)
        return self._tags[int(match.group(1))] if match else None

    def check_all_present(self, text: str) -> None:
        found = [int(n) for n in _TOKEN.findall(text)]
        seen = set(found)
        for index, tag in enumerate(self._tags):
            if index not in seen:
                raise FreezeError(
                    f"the template tag {tag!r} was lost while building the HTML: MJML "
                    "attributes such as width must be plain values, and {% if %} or {% for %} "
                    "blocks belong inside one mj-text or mj-raw element"
                )
        # The HTML parser may move stray text out of tables; a block tag moved past its
        # partner would change what the template means.
        blocks = [n for n in found if self._tags[n].startswith("{%")]
        if blocks != sorted(set(blocks)):
            raise FreezeError(
                "a {% … %} block tag was moved while building the HTML; put {% if %} and "
                "{% for %} blocks inside one mj-text or mj-raw element"
            )


def _load_layout(templates_dir: Path, layout: str) -> dict[str, str]:
    if not _LAYOUT_NAME.match(layout):
        raise FreezeError(f"unknown layout {layout!r}")
    folder = templates_dir / layout
    if not (folder / "body.mjml").is_file():
        raise FreezeError(f"unknown layout {layout!r}")
    parts = {"body_mjml": (folder / "body.mjml").read_text(encoding="utf-8")}
    for name, key in (("subject.txt", "subject"), ("body.txt", "body_text")):
        if (folder / name).is_file():
            parts[key] = (folder / name).read_text(encoding="utf-8")
    return parts


def _validate_all(subject, preheader, body_mjml, body_text, allowed_fields) -> None:
    problems = []
    for label, source in (
        ("subject", subject),
        ("preheader", preheader),
        ("body", body_mjml),
        ("text body", body_text),
    ):
        problems += [
            f"{label}: {error}" for error in validate_template(source or "", allowed_fields)
        ]
    if problems:
        raise FreezeError("; ".join(problems))


def _mjml_document(body_mjml: str, footer: str) -> str:
    source = body_mjml.strip()
    if "<mjml" not in source:
        return f'<mjml lang="en">{_DEFAULT_HEAD}<mj-body>{source}{footer}</mj-body></mjml>'
    end = source.rfind("</mj-body>")
    if end < 0:
        raise FreezeError("the MJML document has no </mj-body>")
    # The footer goes in here rather than in the staff's MJML so it cannot be left out.
    return source[:end] + footer + source[end:]


def _mjml_to_html(source: str) -> str:
    try:
        return mjml2html(source, disable_comments=True)
    except Exception as exc:  # mjml-python raises plain exceptions for bad input
        raise FreezeError(f"the MJML could not be rendered: {exc}") from exc


def _inline_css(markup: str) -> str:
    premailer = Premailer(
        markup,
        keep_style_tags=True,
        remove_classes=False,
        strip_important=False,
        disable_validation=True,
        # No <link> stylesheets, no local files: freezing never reads anything but the HTML.
        allow_network=False,
        allow_loading_external_files=False,
        cssutils_logging_level=logging.CRITICAL,
    )
    return premailer.transform(pretty_print=False)


def _track_links(root: etree._Element, tokens: _Tokens) -> list[FrozenLink]:
    links: list[FrozenLink] = []
    for anchor in root.iter("a", "area"):
        href = (anchor.get("href") or "").strip()
        if _TOKEN_PREFIX in href or href.startswith(("mailto:", "tel:", "#")) or not href:
            continue  # per-recipient URLs and URLs built from merge fields stay as written
        scheme = href.split(":", 1)[0].lower() if ":" in href else ""
        if scheme not in ("http", "https"):
            raise FreezeError(f"links must be http(s), mailto: or tel:, not {href[:80]!r}")
        position = len(links) + 1
        links.append(FrozenLink(position, href, False))
        anchor.set("href", tokens.token_for(_click(position)))
    return links


def _track_text_links(text: str, links: list[FrozenLink]) -> str:
    by_url = {}
    for link in links:
        by_url.setdefault(link.url, link.position)

    def replace(match: re.Match) -> str:
        url = match.group().rstrip(".,;:!?)")
        if url not in by_url:
            by_url[url] = len(links) + 1
            links.append(FrozenLink(by_url[url], url, False))
        return _click(by_url[url]) + match.group()[len(url) :]

    return _URL_IN_TEXT.sub(replace, text)
