import pytest

from app.config import SmtpSettings
from mailers.transport import DeliveryError, PermanentFailure, SmtpTransport, TemporaryFailure
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
