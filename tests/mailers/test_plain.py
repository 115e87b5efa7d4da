"""Single-part plain-text messages: what a standards-strict SMTP server accepts, intact."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

import pytest

from app.config import SmtpSettings
from mailers.message import InvalidAddress
from mailers.plain import build_plain_message
from mailers.transport import SmtpTransport
from tests.smtp_sink import SmtpSink

# One paragraph, no line breaks, non-ASCII throughout: 1,200+ bytes on a single line.
PARAGRAPH = (
    "Sehr geehrte Frau Müller, wir bitten Sie dringend, die Abschiebung von Zoë Ñúñez "
    "und ihrer Familie zu stoppen — «sie hat hier ihr Leben aufgebaut» — "
) * 8
LETTER = PARAGRAPH + "\n\nMit freundlichen Grüßen\nJane Doe\nSpringfield"


@pytest.fixture
def strict_sink():
    sink = SmtpSink(strict=True)
    sink.start()
    yield sink
    sink.stop()


def build(**overrides):
    options = {
        "sender": "alerts@clarion.test",
        "to": "todd.lyons@ice.example",
        "subject": "Freilassung für Zoë — jetzt",
        "body": LETTER,
        "from_name": "Zoë Ñúñez via Rights Watch",
        "reply_to": "zoe@example.org",
        "reply_to_name": "Zoë Ñúñez",
        "message_id_domain": "clarion.test",
    }
    return build_plain_message(**{**options, **overrides})


def test_a_long_non_ascii_letter_reaches_a_strict_server_intact(strict_sink):
    assert len(PARAGRAPH.encode()) > 1200
    data, message_id = build()
    with SmtpTransport(SmtpSettings(port=strict_sink.port)) as transport:
        transport.send("alerts@clarion.test", "todd.lyons@ice.example", data)
    [received] = strict_sink.messages
    message = received.message
    body = message.get_content().replace("\r\n", "\n")
    assert body == LETTER + "\n"
    assert message["Subject"] == "Freilassung für Zoë — jetzt"
    assert message["From"].addresses[0].display_name == "Zoë Ñúñez via Rights Watch"
    assert message["Reply-To"].addresses[0].addr_spec == "zoe@example.org"
    assert message["Message-ID"] == message_id
    assert message["Date"].datetime.tzinfo is not None
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"


def test_the_strict_server_refuses_what_email_message_as_bytes_makes(strict_sink):
    # The letter as it was built before: EmailMessage.as_bytes() uses bare LF line endings.
    old = EmailMessage()
    old["From"], old["To"], old["Subject"] = "a@clarion.test", "t@ice.example", "x"
    old.set_content(LETTER)
    with (
        smtplib.SMTP("127.0.0.1", strict_sink.port) as smtp,
        pytest.raises(smtplib.SMTPDataError) as refused,
    ):
        smtp.sendmail("a@clarion.test", ["t@ice.example"], old.as_bytes())
    assert refused.value.smtp_code == 500
    assert strict_sink.messages == []


def test_every_line_ends_in_crlf_and_fits_the_limits():
    data, _ = build(body=LETTER + "\r\n. a dot line\rtrailing spaces   \n" + "x" * 2000)
    assert data.count(b"\n") == data.count(b"\r\n") == data.count(b"\r")
    head, _, body = data.partition(b"\r\n\r\n")
    assert max(len(line) for line in head.split(b"\r\n")) <= 998
    assert max(len(line) for line in body.split(b"\r\n")) <= 76
    assert data.endswith(b"\r\n")


def test_header_values_cannot_start_headers_of_their_own():
    data, _ = build(subject="Hi\r\nBcc: evil@example.com", extra_headers={"X-Note": "a\nb"})
    head = data.partition(b"\r\n\r\n")[0]
    assert b"\r\nBcc:" not in head
    assert b"Subject: Hi Bcc: evil@example.com\r\n" in head
    assert b"X-Note: a b\r\n" in head


def test_extra_headers_and_refusals():
    data, _ = build(extra_headers={"Auto-Submitted": "auto-generated"}, reply_to=None)
    assert b"Auto-Submitted: auto-generated\r\n" in data and b"Reply-To" not in data
    with pytest.raises(ValueError):
        build(extra_headers={"Content-Type": "text/html"})
    with pytest.raises(ValueError):
        build(extra_headers={"Bad Name": "x"})
    with pytest.raises(InvalidAddress):
        build(to="two@a.example, three@b.example")
    with pytest.raises(ValueError):
        build(message_id_domain="bad domain>")
