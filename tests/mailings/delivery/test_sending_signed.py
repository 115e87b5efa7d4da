"""A DKIM-signed send: messages built (and signed) ahead in a thread while the last is sent."""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import replace

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select

from app.extensions import db
from app.mailings.delivery.building import BuildAhead
from app.mailings.delivery.launch import request_send, start_mailing
from app.mailings.delivery.sending import send_batch
from app.mailings.models import Delivery, DeliveryStatus
from tests.factories import make_list, make_mailing, make_supporters

DOMAIN = "clarion.test"


@pytest.fixture(scope="module")
def rsa_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def test_a_signed_batch_sends_everyone_once_every_signature_verifies(
    settings, smtp_sink, redis_conn, rsa_key
):
    pem, record = rsa_key
    settings = replace(
        settings,
        smtp_url=smtp_sink.url,
        batch_size=50,
        dkim_selector="send2026",
        dkim_domain=DOMAIN,
        dkim_private_key=pem,
    )
    smtp_sink.refuse_with(
        lambda rcpt: (
            "550 5.1.1 no such user"
            if rcpt.startswith("supporter3@")
            else "451 4.3.0 try later"
            if rcpt.startswith("supporter7@")
            else None
        )
    )
    audience = make_list()
    make_supporters(30, mailing_list=audience)
    mailing = make_mailing(audience)
    request_send(mailing, settings)
    db.session.commit()
    assert start_mailing(mailing.id, settings)

    result = send_batch(mailing.id, 0, settings)
    assert (result.sent, result.failed, result.deferred) == (28, 1, 1)
    received = smtp_sink.messages
    expected = {f"supporter{n}@example.org" for n in range(30)} - {
        "supporter3@example.org",
        "supporter7@example.org",
    }
    assert sorted(m.rcpt_tos[0] for m in received) == sorted(expected)

    def dnsfunc(name, timeout=5):
        assert name == f"send2026._domainkey.{DOMAIN}.".encode()
        return record

    for message in received:
        assert dkim.DKIM(message.raw).verify(dnsfunc=dnsfunc)
        # Built for this recipient: the To it was signed with is the one it went to.
        assert message.rcpt_tos[0] in message.message["To"]
    recorded = dict(
        db.session.execute(
            select(Delivery.status, func.count())
            .where(Delivery.mailing_id == mailing.id)
            .group_by(Delivery.status)
        ).all()
    )
    assert recorded == {
        DeliveryStatus.SENT: 28,
        DeliveryStatus.FAILED: 1,
        DeliveryStatus.DEFERRED: 1,
    }
    assert not [t for t in threading.enumerate() if t.name.startswith("build-ahead")]


def test_build_ahead_builds_in_order_a_few_ahead_and_reraises_for_its_own_row():
    built_order = []

    def build(delivery_id: int):
        built_order.append(delivery_id)
        if delivery_id == 3:
            raise ValueError("no mail can carry this address")
        return f"message {delivery_id}"

    ahead = BuildAhead(build)
    remaining = list(range(1, 11))
    try:
        assert ahead.built(1, remaining) == "message 1"
        remaining.pop(0)
        assert ahead.built(2, remaining) == "message 2"
        remaining.pop(0)
        with pytest.raises(ValueError, match="no mail can carry"):
            ahead.built(3, remaining)
        remaining.pop(0)
        deadline = time.monotonic() + 5
        while len(built_order) < 3 + BuildAhead.AHEAD and time.monotonic() < deadline:
            time.sleep(0.01)
        # Never more than AHEAD beyond the one being sent, always in the rows' order.
        assert built_order == list(range(1, 3 + BuildAhead.AHEAD + 1))
    finally:
        ahead.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("build-ahead")]
