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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpSink:
    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.handler = _Handler()
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
