"""Development only: browse the mail the local SMTP capture (workers/mailcapture.py) stored.

Captured HTML is untrusted (it is whatever a template produced, or a test sent), so it is shown
only inside a sandboxed iframe without scripts or Clarion's origin.
"""

from __future__ import annotations

import email
import email.policy
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from pathlib import Path

from flask import Blueprint, abort, current_app, render_template, request, send_file

from workers.mailcapture import captured_files

PER_PAGE = 50
# Exactly the names workers/mailcapture.py writes; anything else (../, dots, slashes) is a 404.
NAME_RE = re.compile(r"\A[0-9]{8}T[0-9]{12}Z-[0-9a-f]{32}\Z")
HEADER_BYTES = 64 * 1024

# The page itself runs no script; mail HTML may load remote images (as in a mail client) so
# open tracking can be tried locally, and styles inline as mail does.
CSP = (
    "default-src 'none'; img-src * data: cid:; style-src 'self' 'unsafe-inline'; "
    "font-src * data:; form-action 'none'; frame-ancestors 'self'"
)

devmail = Blueprint("devmail", __name__, url_prefix="/dev/mailbox")


@dataclass(frozen=True)
class CapturedSummary:
    name: str
    received_at: datetime
    sender: str
    recipients: str
    subject: str


def _capture_dir() -> Path:
    return current_app.config["CLARION"].capture_dir


def _received_at(name: str) -> datetime:
    return datetime.strptime(name[:22], "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)


def _decoded(message, key: str, raw: str) -> str:
    try:
        return str(message.policy.header_fetch_parse(key, raw))
    except Exception:  # captured test mail is often malformed; show such a header raw
        return raw


def _header(message, name: str) -> str:
    """Return the first `name` header decoded, or its raw text when it cannot be decoded."""
    for key, raw in message.raw_items():
        if key.lower() == name.lower():
            return _decoded(message, key, raw)
    return ""


def _summary(path: Path) -> CapturedSummary:
    with open(path, "rb") as handle:
        head = handle.read(HEADER_BYTES)
    headers = BytesHeaderParser(policy=email.policy.default).parsebytes(head)
    name = path.stem
    return CapturedSummary(
        name=name,
        received_at=_received_at(name),
        sender=_header(headers, "From"),
        recipients=_header(headers, "To"),
        subject=_header(headers, "Subject") or "(no subject)",
    )


def _message_path(name: str) -> Path:
    if not NAME_RE.match(name):
        abort(404)
    path = _capture_dir() / f"{name}.eml"
    if not path.is_file():
        abort(404)
    return path


def _part_text(message: EmailMessage, subtype: str) -> str | None:
    part = message.get_body(preferencelist=(subtype,))
    if part is None:
        return None
    try:
        return part.get_content()
    except (LookupError, UnicodeError, AttributeError):
        payload = part.get_payload(decode=True) or b""
        return payload.decode("utf-8", errors="replace")


def _attachments(message: EmailMessage) -> list[tuple[str, str, int]]:
    found = []
    for part in message.iter_attachments():
        payload = part.get_payload(decode=True) or b""
        found.append((part.get_filename() or "(unnamed)", part.get_content_type(), len(payload)))
    return found


@devmail.get("")
def mailbox():
    files = list(reversed(captured_files(_capture_dir())))
    pages = max(1, math.ceil(len(files) / PER_PAGE))
    page = min(max(request.args.get("page", 1, type=int), 1), pages)
    shown = files[(page - 1) * PER_PAGE : page * PER_PAGE]
    messages = []
    for path in shown:
        try:
            messages.append(_summary(path))
        except FileNotFoundError:  # pruned by the capture process since the listing
            continue
    return render_template(
        "devmail/index.html",
        messages=messages,
        total=len(files),
        page=page,
        pages=pages,
        capture_dir=_capture_dir(),
    )


@devmail.get("/<name>.eml")
def raw_message(name: str):
    path = _message_path(name)
    response = send_file(
        path, mimetype="message/rfc822", as_attachment=True, download_name=f"{name}.eml"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@devmail.get("/<name>")
def message_detail(name: str):
    path = _message_path(name)
    with open(path, "rb") as handle:
        message = email.message_from_binary_file(handle, policy=email.policy.default)
    headers = [(key, _decoded(message, key, raw)) for key, raw in message.raw_items()]
    html = _part_text(message, "html")
    response = current_app.make_response(
        render_template(
            "devmail/message.html",
            name=name,
            received_at=_received_at(name),
            subject=_header(message, "Subject") or "(no subject)",
            headers=headers,
            text=_part_text(message, "plain"),
            # Links open in a new tab: the sandbox forbids navigating this page.
            html_doc='<base target="_blank">' + html if html is not None else None,
            attachments=_attachments(message),
        )
    )
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"  # as frame-ancestors 'self' above
    return response


def register_devmail(app) -> None:
    """Serve /dev/mailbox, except in production where there is no local capture to show."""
    if app.config["CLARION"].is_production:
        return
    app.register_blueprint(devmail)
