"""Build each recipient's RFC 5322 message from a frozen mailing, fast.

The email package's generic MIME machinery costs milliseconds per message. Everything that is the
same for every recipient (the fixed headers, the MIME skeleton, the boundary) is built once in
MessageFactory; per recipient we render three compiled templates, quoted-printable encode the two
bodies with binascii (C speed) and join bytes.

Every header value that can carry recipient or staff input passes through `clean_header` after
rendering: control characters (CR, LF, NEL, U+2028 …) become spaces, so no merge field can ever
start a header of its own. Addresses with such characters are refused outright.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import time
from dataclasses import dataclass
from email.utils import formatdate
from typing import TYPE_CHECKING

from jinja2 import nodes

if TYPE_CHECKING:
    from mailers.dkim import DkimSigner
    from mailers.render import FrozenMailing


class InvalidAddress(ValueError):
    """An email address that cannot be put in a header safely."""


@dataclass(frozen=True, slots=True)
class Recipient:
    email: str
    fields: dict
    # action_url, unsubscribe_url, one_click_unsubscribe_url, preferences_url,
    # view_in_browser_url, open_url, click_url
    urls: dict
    # Identifies the supporter in the List-Unsubscribe mailto without exposing the address.
    unsubscribe_token: str
    subject_prefix: str = ""


@dataclass(frozen=True, slots=True)
class BuiltMessage:
    message_id: str
    data: bytes


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_BAD_IN_ADDRESS = re.compile(r"[\s\x00-\x1f\x7f-\x9f\u2028\u2029<>()\[\],;:\"\\]")
_ATOM_PHRASE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*$")
_NEWLINES = re.compile(r"\r\n|\r|\n")
_TOKEN = re.compile(r"^[A-Za-z0-9._~-]+$")
# RFC 8058 wants https; plain http is allowed so a local run (http://127.0.0.1) can send.
_URL = re.compile(r"^https?://[\x21-\x7e]+$")
_HEADER_ID = re.compile(r"^[\x21-\x7e]+$")
_DOMAIN = re.compile(r"^[A-Za-z0-9.-]+$")
# RFC 2047: an encoded word is at most 75 characters and a line holding one at most 76, the
# header's name included; "=?utf-8?b?" + "?=" is 12 of them, the rest base64 (4 per 3 bytes).
_WORD_LINE = 76
_LINE = 78

# Precedence: bulk is deliberately not sent. It is non-standard (RFC 2076 discourages it), Gmail's
# and Yahoo's bulk-sender requirements do not ask for it, and auto-responders already stand down
# for messages that carry List-Id / List-Unsubscribe (RFC 3834 section 2). It only costs bytes.


class MessageFactory:
    """Build one recipient's message bytes; construct once per mailing."""

    def __init__(
        self,
        frozen: FrozenMailing,
        *,
        from_name: str | None,
        from_email: str,
        reply_to: str | None,
        list_id: str,
        feedback_id: str,
        unsubscribe_mailto: str,
        message_id_domain: str,
        dkim: DkimSigner | None = None,
        mailing_ref: str | None = None,
    ):
        check_address(from_email)
        check_address(unsubscribe_mailto)
        if reply_to:
            check_address(reply_to)
        for name, value in (("list_id", list_id), ("feedback_id", feedback_id)):
            if not _HEADER_ID.match(value or ""):
                raise ValueError(f"{name} must be printable ASCII without spaces")
        check_message_id_domain(message_id_domain)
        if mailing_ref is not None and not _HEADER_ID.match(mailing_ref):
            raise ValueError("mailing_ref must be printable ASCII without spaces")
        self._subject = frozen.subject_template
        self._html = _QuotedPrintableBody(frozen.html_template, frozen.html_source)
        self._text = _QuotedPrintableBody(frozen.text_template, frozen.text_source)
        self._dkim = dkim
        self._mailto = unsubscribe_mailto
        self._id_domain = message_id_domain
        self._date_second = -1
        self._date = ""

        fixed = [f"From: {format_address(from_name, from_email, len('From: '))}"]
        if reply_to:
            fixed.append(f"Reply-To: {reply_to}")
        fixed += [
            f"List-Id: <{list_id}>",
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
            f"Feedback-ID: {feedback_id}",
        ]
        if mailing_ref:
            fixed.append(f"X-Clarion-Mailing: {mailing_ref}")
        # A boundary starting with "=_" can never occur in quoted-printable output, where "="
        # is always followed by two hex digits or a line break.
        boundary = "=_clarion_" + os.urandom(12).hex()
        fixed += [
            "MIME-Version: 1.0",
            f'Content-Type: multipart/alternative; boundary="{boundary}"',
        ]
        self._fixed_headers = ("\r\n".join(fixed) + "\r\n\r\n").encode("utf-8")
        part = '\r\n--{b}\r\nContent-Type: text/{t}; charset="utf-8"\r\n'
        part += "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        self._text_head = part.format(b=boundary, t="plain").lstrip("\r\n").encode("ascii")
        self._html_head = part.format(b=boundary, t="html").encode("ascii")
        self._closing = f"\r\n--{boundary}--\r\n".encode("ascii")

    @property
    def signs(self) -> bool:
        """Whether each message is DKIM-signed (the costly part of building it)."""
        return self._dkim is not None

    def build(self, recipient: Recipient) -> BuiltMessage:
        """Return the complete message for one recipient, DKIM-signed when a signer is set."""
        check_address(recipient.email)
        context = merge_context(recipient)
        urls = recipient.urls
        one_click = urls["one_click_unsubscribe_url"]
        token = recipient.unsubscribe_token
        if not _URL.match(one_click) or not _TOKEN.match(token or ""):
            raise ValueError("unsubscribe URL and token must be plain https/URL-safe text")

        subject = clean_header(recipient.subject_prefix + self._subject.render(context))
        name = clean_header(
            " ".join(str(context.get(k, "")) for k in ("first_name", "last_name")).strip()
        )
        now = int(time.time())
        if now != self._date_second:
            self._date_second, self._date = now, formatdate(now, usegmt=True)
        message_id = new_message_id(self._id_domain)
        headers = (
            f"To: {format_address(name, recipient.email, len('To: '))}\r\n"
            f"Subject: {encode_unstructured(subject, len('Subject: '))}\r\n"
            f"Date: {self._date}\r\n"
            f"Message-ID: {message_id}\r\n"
            f"List-Unsubscribe: <{one_click}>,\r\n"
            f" <mailto:{self._mailto}?subject=unsubscribe-{token}>\r\n"
        ).encode()
        # The templates emit CRLF line endings (see merge.py) and _context turned every line
        # break in a field into CRLF, so b2a_qp keeps CRLF and soft-breaks lines at 76.
        text = self._text.render(context)
        html = self._html.render(context)
        data = b"".join(
            (
                headers,
                self._fixed_headers,
                self._text_head,
                text,
                self._html_head,
                html,
                self._closing,
            )
        )
        if self._dkim is not None:
            data = self._dkim.sign(data) + data
        return BuiltMessage(message_id=message_id, data=data)


class _QuotedPrintableBody:
    """Render a body template straight to quoted-printable, encoding its static text once.

    Jinja yields the template's literal text and each merge value as separate chunks. Each
    chunk is encoded on its own and the chunks are joined with soft line breaks ("=" CRLF),
    which decode to nothing, so the result decodes to exactly the rendered body. The literal
    chunks (most of a 20 KB mail) are encoded once per mailing; only merge values and
    per-recipient URLs are encoded per message.
    """

    def __init__(self, template, source: str):
        self._template = template
        self._literal = {
            node.data for node in template.environment.parse(source).find_all(nodes.TemplateData)
        }
        self._encoded: dict[str, bytes] = {}

    def render(self, context: dict) -> bytes:
        parts = []
        for chunk in self._template.generate(context):
            if not chunk:
                continue
            encoded = self._encoded.get(chunk)
            if encoded is None:
                encoded = quoted_printable(chunk)
                if chunk in self._literal:
                    self._encoded[str(chunk)] = encoded
            parts.append(encoded)
        return b"=\r\n".join(parts)


def quoted_printable(chunk: str) -> bytes:
    """Encode `chunk` (CRLF line breaks) as quoted-printable: CRLF lines of at most 76 octets."""
    data = chunk.encode("utf-8")
    encoded = binascii.b2a_qp(data)
    if b"\r\n" not in data:
        # b2a_qp writes soft breaks in the line-ending style it sees, LF when it sees none.
        encoded = encoded.replace(b"\n", b"\r\n")
    if len(encoded) > 76 and (b"=20\r\n" in encoded or b"=09\r\n" in encoded):
        # b2a_qp escapes a space or tab before a line break without counting the escape's two
        # extra octets, so that line can reach 77. Only such chunks are re-broken: the search
        # is a memchr-speed scan, and only of chunks long enough to hold such a line (re-checking
        # every line cost 7 µs a message).
        encoded = b"\r\n".join(
            _fit(line, 76) if len(line) > 76 else line for line in encoded.split(b"\r\n")
        )
    # The soft break that follows must still fit in a 76-character line.
    last = encoded.rfind(b"\n") + 1
    if len(encoded) - last > 75:
        cut = last + 75
        if encoded[cut - 1 : cut] == b"=":
            cut -= 1
        elif encoded[cut - 2 : cut - 1] == b"=":
            cut -= 2
        encoded = encoded[:cut] + b"=\r\n" + encoded[cut:]
    return encoded


def _fit(line: bytes, limit: int) -> bytes:
    """Soft-break an encoded line into lines of at most `limit` octets, never inside an escape."""
    pieces = []
    while len(line) > limit:
        cut = 75  # leaves room for the "=" of the soft break
        if line[cut - 1 : cut] == b"=":
            cut -= 1
        elif line[cut - 2 : cut - 1] == b"=":
            cut -= 2
        pieces.append(line[:cut] + b"=")
        line = line[cut:]
    pieces.append(line)
    return b"\r\n".join(pieces)


def merge_context(recipient: Recipient) -> dict:
    """Return what the templates render with: empty fields left undefined, then the URLs."""
    context = {"email": recipient.email}
    for key, value in recipient.fields.items():
        if value is None or value == "":
            continue  # undefined, so `default("Friend")` applies
        if isinstance(value, str) and ("\r" in value or "\n" in value):
            value = _NEWLINES.sub("\r\n", value)
        context[key] = value
    context.update(recipient.urls)
    return context


def check_message_id_domain(domain: str) -> None:
    """Refuse a Message-ID domain that is not a plain domain name."""
    if not _DOMAIN.match(domain or ""):
        raise ValueError("message_id_domain must be a domain name")


def new_message_id(domain: str) -> str:
    """Return a fresh, unguessable `<…@domain>` Message-ID."""
    return "<" + os.urandom(16).hex() + "@" + domain + ">"


def check_address(address: str) -> None:
    """Refuse an address that could break out of its header or the SMTP envelope."""
    if (
        not address
        or len(address) > 254
        or address.count("@") != 1
        or _BAD_IN_ADDRESS.search(address)
        or address.startswith("@")
        or address.endswith("@")
    ):
        raise InvalidAddress(f"not a usable email address: {address!r}")


def clean_header(value: str) -> str:
    """Return `value` fit for one header line: control characters and whitespace runs → a space."""
    # Control characters become spaces first, then every run of (Unicode) whitespace collapses.
    return " ".join(_CONTROL.sub(" ", value).split())


def format_address(name: str | None, address: str, used: int = len("Reply-To: ")) -> str:
    """Return `name <address>` with the display name quoted or RFC 2047 encoded as needed."""
    name = clean_header(name or "")
    if not name:
        return address
    if name.isascii() and "=?" not in name:
        if not _ATOM_PHRASE.match(name):
            name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return f"{name} <{address}>"
    return "\r\n ".join(_encoded_words(name, used)) + f" <{address}>"


def encode_unstructured(value: str, used: int) -> str:
    """Encode a Subject-like value: folded ASCII, or RFC 2047 base64 words when needed."""
    if value.isascii() and "=?" not in value:
        if used + len(value) <= _LINE:
            return value
        return _fold(value, used)
    return "\r\n ".join(_encoded_words(value, used))


def _fold(value: str, used: int) -> str:
    lines, current = [], ""
    for word in value.split(" "):
        if current and used + len(current) + 1 + len(word) > _LINE:
            lines.append(current)
            current, used = word, 1
        else:
            current = f"{current} {word}" if current else word
    lines.append(current)
    return "\r\n ".join(lines)


def _encoded_words(value: str, used: int) -> list[str]:
    raw = value.encode("utf-8")
    words, start = [], 0
    while start < len(raw):
        # The first word follows the header's name, the others a folding space.
        room = (_WORD_LINE - (used if not words else 1) - len("=?utf-8?b??=")) // 4 * 3
        end = min(start + room, len(raw))
        # Never split a UTF-8 sequence: back off over continuation bytes (10xxxxxx).
        while end < len(raw) and end > start + 1 and (raw[end] & 0xC0) == 0x80:
            end -= 1
        words.append("=?utf-8?b?" + base64.b64encode(raw[start:end]).decode("ascii") + "?=")
        start = end
    return words
