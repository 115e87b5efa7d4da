"""A real SMTP server on loopback (aiosmtpd) that keeps every message it accepts."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtpd.controller import Controller


@dataclass
class ReceivedMessage:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.raw, policy=email.policy.default)


@dataclass
class _Handler:
    messages: list[ReceivedMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Optional hook: given the recipient, return an SMTP reply ("451 …") to refuse it.
    reply_for: object = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reply_for is not None:
            reply = self.reply_for(address)
            if reply:
                return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append(
                ReceivedMessage(
                    envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content
                )
            )
        return "250 Message accepted for delivery"


# RFC 5321 4.5.3.1.6: a line is at most 998 octets plus CRLF.
MAX_LINE_OCTETS = 998


@dataclass
class _StrictHandler(_Handler):
    """Refuse what Postfix >= 3.9 (smtpd_forbid_bare_newline) and RFC 5321 refuse.

    aiosmtpd only splits DATA at CRLF and allows 1001-octet lines, so a short message with bare
    LF line endings gets through it; a strict server answers 500 instead.
    """

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content
        crlf = data.count(b"\r\n")
        if data.count(b"\n") != crlf or data.count(b"\r") != crlf:
            return "500 5.5.2 Error: bare <CR> or <LF> received"
        if any(len(line) > MAX_LINE_OCTETS for line in data.split(b"\r\n")):
            return "500 5.5.2 Line too long"
        return await super().handle_DATA(server, session, envelope)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpSink:
    def __init__(self, port: int | None = None, *, strict: bool = False):
        self.port = port or free_port()
        # strict: refuse bare CR/LF and lines over 998 octets, as standards-strict servers do.
        self.handler = _StrictHandler() if strict else _Handler()
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, data_size_limit=50 * 1024 * 1024
        )

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self.handler.lock:
            return list(self.handler.messages)

    def refuse_with(self, reply_for) -> None:
        self.handler.reply_for = reply_for

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()
