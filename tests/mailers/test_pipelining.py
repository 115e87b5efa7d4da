"""The pipelined SMTP path (RFC 2920), against a real SMTP server on loopback."""

from __future__ import annotations

import smtplib

import pytest

from app.config import SmtpSettings
from mailers.transport import PermanentFailure, SmtpTransport, TemporaryFailure, _send_pipelined

MESSAGE = (
    b"From: a@clarion.test\r\nTo: b@example.org\r\nSubject: hi\r\n\r\n"
    b"line one\r\n.starts with a dot\r\n..two dots\r\n"
)


def _connect(sink) -> smtplib.SMTP:
    smtp = smtplib.SMTP("127.0.0.1", sink.port)
    smtp.ehlo()
    return smtp


def test_pipelined_send_delivers_dot_stuffed_body_intact(smtp_sink):
    with _connect(smtp_sink) as smtp:
        for n in range(3):
            _send_pipelined(smtp, "a@clarion.test", f"b{n}@example.org", MESSAGE)
    received = smtp_sink.messages
    assert [m.rcpt_tos for m in received] == [[f"b{n}@example.org"] for n in range(3)]
    assert (
        received[0].message.get_content().replace("\r\n", "\n")
        == "line one\n.starts with a dot\n..two dots\n"
    )


def test_pipelined_refused_recipient_raises_and_leaves_connection_usable(smtp_sink):
    smtp_sink.refuse_with(lambda rcpt: "550 5.1.1 no such user" if rcpt.startswith("x") else None)
    with _connect(smtp_sink) as smtp:
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            _send_pipelined(smtp, "a@clarion.test", "x@example.org", MESSAGE)
        _send_pipelined(smtp, "a@clarion.test", "ok@example.org", MESSAGE)
    assert [m.rcpt_tos for m in smtp_sink.messages] == [["ok@example.org"]]


def test_transport_classifies_pipelined_refusals(smtp_sink, monkeypatch):
    # aiosmtpd does not advertise PIPELINING; pretend it does to drive the pipelined path.
    monkeypatch.setattr(
        smtplib.SMTP,
        "has_extn",
        lambda self, name: name == "pipelining" or name in self.esmtp_features,
    )
    smtp_sink.refuse_with(
        lambda rcpt: {
            "hard@example.org": "550 5.1.1 no such user",
            "soft@example.org": "451 4.3.0 later",
        }.get(rcpt)
    )
    with SmtpTransport(SmtpSettings(port=smtp_sink.port)) as transport:
        with pytest.raises(PermanentFailure) as hard:
            transport.send("a@clarion.test", "hard@example.org", MESSAGE)
        with pytest.raises(TemporaryFailure) as soft:
            transport.send("a@clarion.test", "soft@example.org", MESSAGE)
        transport.send("a@clarion.test", "fine@example.org", MESSAGE)
    assert (hard.value.code, soft.value.code) == (550, 451)
    assert [m.rcpt_tos for m in smtp_sink.messages] == [["fine@example.org"]]
