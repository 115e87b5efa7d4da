import pytest

from app.config import SmtpSettings
from mailers.transport import (
    DeliveryError,
    LocalError,
    PermanentFailure,
    SmtpTransport,
    TemporaryFailure,
    _classify,
)
from tests.mailers.conftest import make_recipient
from tests.smtp_sink import SmtpSink, free_port


def settings_for(port: int) -> SmtpSettings:
    return SmtpSettings(host="127.0.0.1", port=port, timeout=5)


def refuse(address: str):
    if address.startswith("gone@"):
        return "550 5.1.1 no such user"
    if address.startswith("busy@"):
        return "451 4.3.0 try later"
    return None


def test_many_sends_share_one_connection(smtp_sink, demo_factory):
    with SmtpTransport(settings_for(smtp_sink.port)) as transport:
        for n in range(3):
            built = demo_factory.build(make_recipient(email=f"r{n}@example.com"))
            transport.send("bounces@act.example.org", f"r{n}@example.com", built.data)
        assert transport.connections_opened == 1
    received = smtp_sink.messages
    assert [m.rcpt_tos for m in received] == [[f"r{n}@example.com"] for n in range(3)]
    assert received[0].mail_from == "bounces@act.example.org"
    assert received[0].message["To"].addresses[0].addr_spec == "r0@example.com"
    assert received[0].message.get_body(("plain",)).get_content().count("Zoë, we have") == 1


def test_refusals_are_classified_and_the_connection_stays_usable(smtp_sink, demo_factory):
    smtp_sink.refuse_with(refuse)
    data = demo_factory.build(make_recipient()).data
    with SmtpTransport(settings_for(smtp_sink.port)) as transport:
        with pytest.raises(PermanentFailure) as permanent:
            transport.send("b@act.example.org", "gone@example.com", data)
        assert permanent.value.code == 550
        assert "no such user" in permanent.value.reply
        with pytest.raises(TemporaryFailure) as temporary:
            transport.send("b@act.example.org", "busy@example.com", data)
        assert temporary.value.code == 451
        assert isinstance(temporary.value, DeliveryError)
        transport.send("b@act.example.org", "fine@example.com", data)
        assert transport.connections_opened == 1
    assert [m.rcpt_tos for m in smtp_sink.messages] == [["fine@example.com"]]


def test_closed_port_is_a_temporary_failure():
    transport = SmtpTransport(settings_for(free_port()))
    with pytest.raises(TemporaryFailure) as info:
        transport.send("b@act.example.org", "r@example.com", b"Subject: x\r\n\r\nx\r\n")
    assert info.value.code is None
    transport.close()


def test_reconnects_once_when_the_server_dropped_the_connection(demo_factory):
    sink = SmtpSink()
    sink.start()
    data = demo_factory.build(make_recipient()).data
    transport = SmtpTransport(settings_for(sink.port))
    try:
        transport.send("b@act.example.org", "one@example.com", data)
        sink.stop()
        sink = SmtpSink(port=sink.port)  # same address, a new server: the old session is gone
        sink.start()
        transport.send("b@act.example.org", "two@example.com", data)
        assert transport.connections_opened == 2
        assert [m.rcpt_tos for m in sink.messages] == [["two@example.com"]]
    finally:
        transport.close()
        sink.stop()


def test_server_gone_for_good_is_temporary(demo_factory):
    sink = SmtpSink()
    sink.start()
    transport = SmtpTransport(settings_for(sink.port))
    transport.send("b@act.example.org", "one@example.com", b"Subject: x\r\n\r\nx\r\n")
    sink.stop()
    with pytest.raises(TemporaryFailure):
        transport.send("b@act.example.org", "two@example.com", b"Subject: x\r\n\r\nx\r\n")
    transport.close()


def test_non_ascii_addresses_go_out_with_smtputf8(smtp_sink):
    with SmtpTransport(settings_for(smtp_sink.port)) as transport:
        transport.send("b@act.example.org", "zoë@example.com", b"Subject: x\r\n\r\nx\r\n")
        transport.send("b@act.example.org", "ok@example.com", b"Subject: x\r\n\r\nx\r\n")
    assert [m.rcpt_tos for m in smtp_sink.messages] == [["zoë@example.com"], ["ok@example.com"]]


def test_our_protocol_errors_are_local_and_retried_but_recipient_refusals_are_permanent(
    smtp_sink,
):
    replies = {
        "syntax@example.com": "500 5.5.2 Syntax error, command unrecognized",
        "args@example.com": "501 5.5.4 Syntax error in parameters",
        "param@example.com": "555 5.5.4 RCPT TO parameters not recognized",
        "badaddr@example.com": "501 5.1.3 Bad recipient address syntax",
        "nouser@example.com": "550 5.1.1 no such user",
        "moved@example.com": "551 5.1.6 user not local",
        "name@example.com": "553 5.1.3 mailbox name not allowed",
    }
    smtp_sink.refuse_with(replies.get)
    classes = {}
    with SmtpTransport(settings_for(smtp_sink.port)) as transport:
        for rcpt in replies:
            with pytest.raises(DeliveryError) as info:
                transport.send("b@act.example.org", rcpt, b"Subject: x\r\n\r\nx\r\n")
            classes[rcpt.split("@")[0]] = type(info.value)
        transport.send("b@act.example.org", "fine@example.com", b"Subject: x\r\n\r\nx\r\n")
        assert transport.connections_opened == 1
    assert classes == {
        "syntax": LocalError,
        "args": LocalError,
        "param": LocalError,
        "badaddr": PermanentFailure,  # 5.1.x: the address itself is bad
        "nouser": PermanentFailure,
        "moved": PermanentFailure,
        "name": PermanentFailure,
    }
    assert issubclass(LocalError, TemporaryFailure)  # every caller retries it, none bounces it
    assert [m.rcpt_tos for m in smtp_sink.messages] == [["fine@example.com"]]


def test_a_line_too_long_for_a_strict_server_is_our_error():
    sink = SmtpSink(strict=True)
    sink.start()
    try:
        with SmtpTransport(settings_for(sink.port)) as transport:
            with pytest.raises(LocalError) as info:
                transport.send(
                    "b@act.example.org",
                    "t@example.com",
                    b"Subject: x\r\n\r\n" + b"x" * 1200 + b"\r\n",
                )
            assert info.value.code == 500
            transport.send("b@act.example.org", "t@example.com", b"Subject: x\r\n\r\nok\r\n")
        assert len(sink.messages) == 1
    finally:
        sink.stop()


def test_bare_line_feeds_are_refused_before_anything_is_sent(smtp_sink):
    with SmtpTransport(settings_for(smtp_sink.port)) as transport:
        for data in (b"Subject: x\n\nbody\n", b"Subject: x\r\n\r\nbo\rdy\r\n"):
            with pytest.raises(LocalError, match="bare CR or LF"):
                transport.send("b@act.example.org", "t@example.com", data)
    assert smtp_sink.messages == []


def test_a_refused_sender_is_ours_not_the_recipients():
    assert type(_classify(503, b"5.5.1 need MAIL")) is LocalError
    assert type(_classify(554, b"5.7.1 rejected as spam")) is PermanentFailure
    assert type(_classify(421, b"4.7.0 try later")) is TemporaryFailure
