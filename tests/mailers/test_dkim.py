import base64
import email
import email.policy
from dataclasses import replace

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailers.dkim import DkimError, DkimSigner
from tests.mailers.conftest import make_factory, make_recipient


@pytest.fixture(scope="module")
def rsa_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    public_der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, base64.b64encode(public_der)


def dns_for(public_b64: bytes):
    def dnsfunc(name, timeout=5):
        assert name == b"mail2026._domainkey.act.example.org."
        return b"v=DKIM1; k=rsa; p=" + public_b64

    return dnsfunc


def test_signed_message_verifies(demo_frozen, rsa_key):
    private_pem, public_b64 = rsa_key
    signer = DkimSigner("mail2026", "act.example.org", private_pem)
    data = make_factory(demo_frozen, dkim=signer).build(make_recipient()).data
    assert data.startswith(b"DKIM-Signature: ")
    assert dkim.verify(data, dnsfunc=dns_for(public_b64))
    signature = email.message_from_bytes(data, policy=email.policy.default)["DKIM-Signature"]
    signed = signature.split("h=", 1)[1].split(";", 1)[0].replace(" ", "").lower().split(":")
    for header in (
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "list-id",
        "mime-version",
        "content-type",
    ):
        assert header in signed


def test_tampering_breaks_the_signature(demo_frozen, rsa_key):
    private_pem, public_b64 = rsa_key
    signer = DkimSigner("mail2026", "act.example.org", private_pem)
    data = make_factory(demo_frozen, dkim=signer).build(make_recipient()).data
    tampered = data.replace(b"Zo=C3=AB", b"Mallory")
    assert tampered != data
    assert not dkim.verify(tampered, dnsfunc=dns_for(public_b64))
    second_from = data.replace(b"\r\nFrom: ", b"\r\nFrom: evil@example.net\r\nFrom: ", 1)
    assert not dkim.verify(second_from, dnsfunc=dns_for(public_b64))


def test_signer_from_settings(settings, rsa_key):
    assert DkimSigner.from_settings(settings) is None
    with pytest.raises(DkimError, match="together"):
        DkimSigner.from_settings(replace(settings, dkim_selector="s"))
    configured = replace(
        settings,
        dkim_selector="mail2026",
        dkim_domain="act.example.org",
        dkim_private_key=rsa_key[0],
    )
    assert isinstance(DkimSigner.from_settings(configured), DkimSigner)
    with pytest.raises(DkimError):
        DkimSigner.from_settings(replace(configured, dkim_private_key="not a key"))
