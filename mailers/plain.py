"""Build a single-part plain-text message: letters to targets, confirmations, notices.

Uses mailers/message.py's header encoding and quoted-printable helpers, so these messages meet
the same rules as mailings: CRLF line endings, no line longer than 78 (headers) or 76 (body)
octets, RFC 2047 words for non-ASCII headers, and a Date and Message-ID on every message.
Strict SMTP servers (Postfix >= 3.9, aiosmtpd) refuse bare LF and lines over 998 octets.
"""

from __future__ import annotations

import re
from email.utils import formatdate

from mailers.message import (
    check_address,
    check_message_id_domain,
    clean_header,
    encode_unstructured,
    format_address,
    new_message_id,
    quoted_printable,
)

_NEWLINES = re.compile(r"\r\n|\r|\n")
# RFC 5322 field name: printable ASCII except colon.
_FIELD_NAME = re.compile(r"^[\x21-\x39\x3b-\x7e]+$")
# Headers this module writes itself; an extra header may not duplicate or contradict them.
_OWN_HEADERS = frozenset(
    (
        "from",
        "to",
        "cc",
        "bcc",
        "reply-to",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
    )
)


def build_plain_message(
    *,
    sender: str,
    to: str,
    subject: str,
    body: str,
    from_name: str | None = None,
    reply_to: str | None = None,
    reply_to_name: str | None = None,
    message_id_domain: str,
    extra_headers: dict[str, str] | None = None,
) -> tuple[bytes, str]:
    """Return the RFC 5322 bytes (CRLF) of a text/plain UTF-8 message, and its Message-ID.

    Raises InvalidAddress for an unusable address and ValueError for a bad Message-ID domain
    or extra header name.
    """
    check_address(sender)
    check_address(to)
    if reply_to:
        check_address(reply_to)
    check_message_id_domain(message_id_domain)
    message_id = new_message_id(message_id_domain)
    headers = [
        f"From: {format_address(from_name, sender)}",
        f"To: {format_address(None, to)}",
    ]
    if reply_to:
        headers.append(f"Reply-To: {format_address(reply_to_name, reply_to)}")
    headers += [
        f"Subject: {encode_unstructured(clean_header(subject), len('Subject: '))}",
        f"Date: {formatdate(usegmt=True)}",
        f"Message-ID: {message_id}",
    ]
    for name, value in (extra_headers or {}).items():
        if not _FIELD_NAME.match(name) or name.lower() in _OWN_HEADERS:
            raise ValueError(f"not a usable extra header name: {name!r}")
        headers.append(f"{name}: {encode_unstructured(clean_header(value), len(name) + 2)}")
    headers += [
        "MIME-Version: 1.0",
        'Content-Type: text/plain; charset="utf-8"',
        "Content-Transfer-Encoding: quoted-printable",
    ]
    text = _NEWLINES.sub("\r\n", body)
    if not text.endswith("\r\n"):
        text += "\r\n"
    data = ("\r\n".join(headers) + "\r\n\r\n").encode("utf-8") + quoted_printable(text)
    return data, message_id
