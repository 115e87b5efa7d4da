"""DKIM signing, every signature checked by an independent verifier: dkimpy's `verify`.

dkimpy verifies Ed25519 signatures with PyNaCl (a dev dependency for that reason alone).
"""

import base64
import email
import email.policy
import re
from dataclasses import replace

import dkim
import nacl.signing  # noqa: F401 - without it dkimpy cannot verify Ed25519 and says so vaguely
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from dkim.canonicalization import Relaxed
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from app.config import Settings
from mailers.dkim import SIGNED_HEADERS, DkimError, DkimSigner, canonical_body
from tests.mailers.conftest import make_factory, make_recipient

DOMAIN = "act.example.org"
SIGNED_AT = 1_767_225_600  # 2026-01-01: a fixed t= that is never in a verifier's future
# A 512-bit key (generated for this test, signs nothing real): too short for any receiver.
SHORT_KEY = """-----BEGIN PRIVATE KEY-----
MIIBVAIBADANBgkqhkiG9w0BAQEFAASCAT4wggE6AgEAAkEAzqTUIIepZN7MAJCy
RMBCbIoRTPGV+ui/0OLebv3oReu8mwFLvKts94UiK4B7/FHnXkWlInP43GYFoeu3
Buv1TwIDAQABAkACho81KpNOcU6q/xm+r17gdruJZjaAD5IwmmU/lAjfueE8+hK+
d0j2h5mVdItrp0S5wnHDNalyq+pB8L27IsHZAiEA9T5zyKunz1JelrYkshlHV1ek
0J026e2HIIYchs61GZ0CIQDXtPuLNCkxCki0q1R6PjoP222G99blR0i0k1cfo8N8
2wIgXGFlHg9DTD578Qu1sP0Cua0DIa5HFEFsaFz8e+97mqUCICpi5+LstwNp7+uA
lzMGM0aWaalR3ipjnYfORBp1hZ5tAiEAk5vIlycTqooOuJMSb5QjdQ1FbMYpkOsS
2ByWGej2OeA=
-----END PRIVATE KEY-----
"""


def _pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture(scope="module")
def keys():
    """An RSA-2048 and an Ed25519 key, and the DNS TXT records that publish them."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    rsa_public = rsa_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    ed_public = ed_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return {
        "rsa": _pem(rsa_key),
        "ed25519": _pem(ed_key),
        "ed25519_seed": base64.b64encode(
            ed_key.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
        ).decode(),
        "dns": {
            f"mail2026._domainkey.{DOMAIN}.".encode(): b"v=DKIM1; k=rsa; p="
            + base64.b64encode(rsa_public),
            f"ed2026._domainkey.{DOMAIN}.".encode(): b"v=DKIM1; k=ed25519; p="
            + base64.b64encode(ed_public),
        },
    }


@pytest.fixture(scope="module")
def signer(keys):
    return DkimSigner("mail2026", DOMAIN, keys["rsa"], clock=lambda: SIGNED_AT)


@pytest.fixture(scope="module")
def dual_signer(keys):
    return DkimSigner(
        "mail2026",
        DOMAIN,
        keys["rsa"],
        ed25519_selector="ed2026",
        ed25519_private_key=keys["ed25519"],
        clock=lambda: SIGNED_AT,
    )


def verdicts(data: bytes, keys) -> list[bool]:
    """dkimpy's verdict on each DKIM-Signature of `data`, top first (DNS answered from `keys`)."""

    def dnsfunc(name, timeout=5):
        return keys["dns"][name]

    def verify(n: int) -> bool:
        try:
            return dkim.DKIM(data).verify(idx=n, dnsfunc=dnsfunc)
        except dkim.DKIMException:  # what dkim.verify() turns into False, e.g. a body mismatch
            return False

    count = len(re.findall(rb"(?im)^dkim-signature:", data))
    assert count, "the message carries no DKIM-Signature"
    return [verify(n) for n in range(count)]


def transmitted(data: bytes) -> bytes:
    """What the receiver gets: SMTP ends a message with CRLF (smtplib adds one if missing)."""
    return data if data.endswith(b"\r\n") else data + b"\r\n"


def tags(data: bytes, index: int = 0) -> dict[str, str]:
    """The tags of the message's `index`th DKIM-Signature, whitespace removed."""
    message = email.message_from_bytes(data, policy=email.policy.compat32)
    value = re.sub(r"\s+", "", message.get_all("DKIM-Signature")[index])
    return dict(tag.split("=", 1) for tag in value.split(";") if tag)


RAW = {
    # RFC 2047 encoded words in headers, the way MessageFactory writes a non-ASCII name.
    "non-ascii encoded headers": b"From: =?utf-8?b?Wm/Dqw==?= <alerts@act.example.org>\r\n"
    b"To: =?utf-8?b?w5HDusOxZXo=?= <n@example.com>\r\nSubject: =?utf-8?b?QcOnw6Nv?=\r\n"
    b"\r\nHi\r\n",
    "long folded headers": b"From: alerts@act.example.org\r\nSubject: "
    + b"word " * 14
    + b"\r\n\t"
    + b"more " * 14
    + b"\r\n   end\r\nTo: a@example.com,\r\n b@example.com\r\n\r\nBody\r\n",
    "header values with trailing spaces and tabs": b"From: alerts@act.example.org \t \r\n"
    b"Subject:\tTabs\t\tand  spaces \r\nTo:  x@example.com\t\r\n\r\nBody\r\n",
    "empty body": b"From: alerts@act.example.org\r\nSubject: nothing\r\n\r\n",
    "no body at all": b"From: alerts@act.example.org\r\nSubject: nothing\r\n",
    "body with trailing blank lines": b"From: alerts@act.example.org\r\n\r\nText\r\n\r\n \r\n\r\n",
    "lines with trailing whitespace": b"From: alerts@act.example.org\r\n\r\n"
    b"one  \r\ntwo\t\r\n  three \t \r\n\tfour\r\n",
    "body without a final line break": b"From: alerts@act.example.org\r\n\r\nlast line  ",
    "quoted-printable body": b"From: alerts@act.example.org\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable'
    b"\r\n\r\nZo=C3=AB, a soft=\r\n break and a trailing space=20\r\n=3D sign\r\n",
    "header names in any case": b"FROM: alerts@act.example.org\r\nsUbJeCt: case\r\n\r\nx\r\n",
}


@pytest.mark.parametrize("name", RAW)
def test_edge_case_messages_verify(signer, keys, name):
    data = RAW[name]
    assert verdicts(transmitted(signer.sign(data) + data), keys) == [True]


@pytest.mark.parametrize("name", RAW)
def test_body_hash_matches_dkimpy_canonical_body(signer, name):
    body = RAW[name].partition(b"\r\n\r\n")[2]
    assert canonical_body(body) == Relaxed.canonicalize_body(transmitted(body) if body else body)


def test_signed_message_verifies(demo_frozen, signer, keys):
    data = make_factory(demo_frozen, dkim=signer).build(make_recipient()).data
    assert data.startswith(b"DKIM-Signature: ")
    assert verdicts(data, keys) == [True]
    signature = tags(data)
    assert signature["a"] == "rsa-sha256"
    assert signature["c"] == "relaxed/relaxed"
    assert (signature["d"], signature["s"], signature["t"]) == (DOMAIN, "mail2026", "1767225600")
    # The fixed order, From over-signed; headers the message lacks are listed too (signed empty).
    assert signature["h"].encode().split(b":") == list(SIGNED_HEADERS)


def test_signature_lines_are_folded_within_78_characters(demo_frozen, dual_signer):
    data = make_factory(demo_frozen, dkim=dual_signer).build(make_recipient()).data
    head = data.partition(b"\r\n\r\n")[0]
    lines = head.split(b"\r\n")
    starts = [n for n, line in enumerate(lines) if line.startswith(b"DKIM-Signature:")]
    ends = [n for n, line in enumerate(lines) if line.startswith(b"To:")]
    assert len(starts) == 2 and starts[0] == 0 and ends
    signature_lines = lines[: ends[0]]
    assert all(len(line) <= 78 for line in signature_lines), signature_lines
    folded = [n for n in range(ends[0]) if n not in starts]
    assert all(lines[n][:1] == b" " for n in folded)  # continuation lines, not new headers
    # b= starts a line of its own, so its folding never moves the tags before it.
    assert sum(line.startswith(b" b=") for line in signature_lines) == 2


def test_non_ascii_long_subject_and_names_verify(demo_frozen, signer, keys):
    recipient = make_recipient(
        subject_prefix="Ação urgente — " + "très long sujet, " * 6,
        first_name="Zoë  Émilie\t",
        last_name="Ñúñez-Ålström",
    )
    data = make_factory(demo_frozen, dkim=signer, from_name="Amnistía — Sección ES").build(
        recipient
    )
    assert b"=?utf-8?b?" in data.data
    assert verdicts(data.data, keys) == [True]


def test_relaxed_canonicalisation_survives_whitespace_changes_in_transit(demo_frozen, signer, keys):
    data = make_factory(demo_frozen, dkim=signer).build(make_recipient()).data
    # What relays may do under relaxed/relaxed: refold a header, pad a line with spaces.
    refolded = data.replace(b"\r\nSubject: ", b"\r\nSubject:\r\n\t  ", 1)
    padded = data.replace(b"\r\n\r\n", b"  \r\n\r\n", 2)
    for changed in (refolded, padded):
        assert changed != data
        assert verdicts(changed, keys) == [True]


def test_tampering_breaks_the_signature(demo_frozen, dual_signer, keys):
    data = make_factory(demo_frozen, dkim=dual_signer, reply_to=None).build(make_recipient()).data
    assert verdicts(data, keys) == [True, True]
    tampered_body = data.replace(b"Zo=C3=AB", b"Mallory")
    tampered_subject = re.sub(rb"\r\nSubject: [^\r]*", b"\r\nSubject: Donate now", data, count=1)
    second_from = data.replace(b"\r\nFrom: ", b"\r\nFrom: evil@example.net\r\nFrom: ", 1)
    added_reply_to = data.replace(b"\r\nFrom: ", b"\r\nReply-To: evil@example.net\r\nFrom: ", 1)
    for tampered in (tampered_body, tampered_subject, second_from, added_reply_to):
        assert tampered != data
        assert verdicts(tampered, keys) == [False, False]


def test_ed25519_signature_beside_rsa_verifies(demo_frozen, dual_signer, keys):
    data = make_factory(demo_frozen, dkim=dual_signer).build(make_recipient()).data
    assert verdicts(data, keys) == [True, True]
    rsa_tags, ed_tags = tags(data, 0), tags(data, 1)
    assert (rsa_tags["a"], ed_tags["a"]) == ("rsa-sha256", "ed25519-sha256")
    assert ed_tags["s"] == "ed2026"
    assert rsa_tags["bh"] == ed_tags["bh"]  # one body hash for both
    assert len(base64.b64decode(ed_tags["b"])) == 64


def test_ed25519_key_as_base64_seed(keys):
    seeded = DkimSigner(
        "mail2026",
        DOMAIN,
        keys["rsa"],
        ed25519_selector="ed2026",
        ed25519_private_key=keys["ed25519_seed"],
        clock=lambda: SIGNED_AT,
    )
    data = RAW["quoted-printable body"]
    assert verdicts(seeded.sign(data) + data, keys) == [True, True]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("not a key", "not a usable PEM"),
        ("-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n", "not a usable PEM"),
        (SHORT_KEY, "512 bits"),
        (_pem(ec.generate_private_key(ec.SECP256R1())), "must be an RSA key"),
        (_pem(ed25519.Ed25519PrivateKey.generate()), "must be an RSA key"),
        ("", "not a usable PEM"),
    ],
)
def test_unusable_rsa_key_is_refused_at_construction(key, message):
    with pytest.raises(DkimError, match=message):
        DkimSigner("mail2026", DOMAIN, key)


@pytest.mark.parametrize(
    "key",
    [
        "bm90IDMyIGJ5dGVz",
        "not base64!",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
    ],
)
def test_unusable_ed25519_key_is_refused(keys, key):
    with pytest.raises(DkimError, match="DKIM_ED25519_PRIVATE_KEY"):
        DkimSigner("mail2026", DOMAIN, keys["rsa"], ed25519_selector="ed", ed25519_private_key=key)
    with pytest.raises(DkimError, match="must be an Ed25519 key"):
        DkimSigner(
            "mail2026", DOMAIN, keys["rsa"], ed25519_selector="ed", ed25519_private_key=keys["rsa"]
        )


@pytest.mark.parametrize(
    ("selector", "domain"),
    [("mail;2026", DOMAIN), ("mail2026", "act.example.org; h=from"), ("", DOMAIN), ("-x", DOMAIN)],
)
def test_selector_and_domain_must_be_dns_names(keys, selector, domain):
    with pytest.raises(DkimError, match="must be a DNS name"):
        DkimSigner(selector, domain, keys["rsa"])


def test_signer_from_settings(settings, keys):
    assert DkimSigner.from_settings(settings) is None
    with pytest.raises(DkimError, match="together"):
        DkimSigner.from_settings(replace(settings, dkim_selector="s"))
    with pytest.raises(DkimError, match="needs DKIM_SELECTOR"):
        DkimSigner.from_settings(replace(settings, dkim_ed25519_selector="ed2026"))
    configured = replace(
        settings, dkim_selector="mail2026", dkim_domain=DOMAIN, dkim_private_key=keys["rsa"]
    )
    assert isinstance(DkimSigner.from_settings(configured), DkimSigner)
    with pytest.raises(DkimError):
        DkimSigner.from_settings(replace(configured, dkim_private_key="not a key"))
    with pytest.raises(DkimError, match="go together"):
        DkimSigner.from_settings(replace(configured, dkim_ed25519_selector="ed2026"))


def test_keys_from_the_environment_with_escaped_line_breaks(keys):
    """A one-line environment value carries the PEM's line breaks as literal backslash-n."""
    environ = {
        "DKIM_SELECTOR": "mail2026",
        "DKIM_DOMAIN": DOMAIN,
        "DKIM_PRIVATE_KEY": keys["rsa"].strip().replace("\n", "\\n"),
        "DKIM_ED25519_SELECTOR": "ed2026",
        "DKIM_ED25519_PRIVATE_KEY": keys["ed25519"].replace("\n", "\\r\\n"),
    }
    assert "\n" not in environ["DKIM_PRIVATE_KEY"]
    signer = DkimSigner.from_settings(Settings.from_env(environ))
    data = RAW["lines with trailing whitespace"]
    assert verdicts(signer.sign(data) + data, keys) == [True, True]


# Property: whatever headers and body a message has, dkimpy verifies what we sign.
_WSP = st.sampled_from([" ", "  ", "\t", " \t "])
_WORD = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12)
_LINE = st.lists(st.one_of(_WORD, _WSP), max_size=12).map("".join)
# Every message has one From (dkimpy, rightly, fails a message with more From fields than signed);
# the other names may repeat, in any case.
_HEADER_NAMES = st.sampled_from(
    [name.decode().title() for name in sorted(set(SIGNED_HEADERS) - {b"from"})]
    + ["X-Extra", "Received", "sender", "SUBJECT"]
)
_HEADER = st.tuples(
    _HEADER_NAMES, _WSP | st.just(""), st.lists(_LINE.filter(str.strip), min_size=1, max_size=3)
).map(lambda h: f"{h[0]}:{h[1]}" + "\r\n\t".join(h[2]))
_MESSAGE = st.tuples(
    st.lists(_HEADER, max_size=10),
    st.lists(_LINE, max_size=15),
    st.integers(0, 3),  # trailing empty lines
    st.booleans(),  # the body's last line ends with CRLF
)


@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(parts=_MESSAGE)
def test_property_dkimpy_verifies_every_generated_message(signer, keys, parts):
    headers, lines, blank, final_crlf = parts
    body = "\r\n".join(lines) + "\r\n" * blank
    if final_crlf and body:
        body += "\r\n"
    data = ("\r\n".join(["From: alerts@act.example.org", *headers]) + "\r\n\r\n" + body).encode()
    assert verdicts(transmitted(signer.sign(data) + data), keys) == [True]


@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    first=st.text(max_size=30),
    last=st.text(max_size=30),
    prefix=st.text(max_size=90),
)
def test_property_dkimpy_verifies_every_built_message(
    demo_frozen, dual_signer, keys, first, last, prefix
):
    factory = make_factory(demo_frozen, dkim=dual_signer)
    data = factory.build(make_recipient(first_name=first, last_name=last, subject_prefix=prefix))
    assert verdicts(data.data, keys) == [True, True]
