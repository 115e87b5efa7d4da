"""DKIM-sign built messages: RFC 6376 relaxed/relaxed, RSA-SHA256 and optionally Ed25519-SHA256.

Signing is done here on `cryptography` (OpenSSL) rather than with dkimpy, whose pure-Python RSA
cost ~6 ms a message, ten times the cost of building and sending it. Per message this is one
pass of canonicalisation and SHA-256 over the body (shared by both signatures), a dozen header
lines and one RSA-2048 signature: ~0.3 ms, 0.23 of it the RSA signature; Ed25519 adds ~0.03 ms
(bench/bench_dkim.py).

Messages are CRLF throughout: MessageFactory builds them so and the transport refuses anything
else, so only CRLF is a line break here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from app.config import Settings

# Headers a receiver must see unchanged, in the order they are signed. From is listed twice so a
# second From added in transit breaks the signature (over-signing). Every name is listed whether
# or not the message has that header: an absent one signs as empty, so adding it (a Reply-To
# inserted on the way) breaks the signature too (RFC 6376 5.4).
SIGNED_HEADERS = (
    b"from",
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"list-id",
    b"mime-version",
    b"content-type",
)
_WANTED = frozenset(SIGNED_HEADERS)

# RFC 8301 3.2: signers MUST use RSA keys of at least 1024 bits (and SHOULD use 2048).
MIN_RSA_BITS = 1024
# A selector and a domain are dot-separated DNS labels (RFC 6376 3.1, 3.5).
_DNS_NAME = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*$")
_WSP_RUN = re.compile(rb"[ \t]+")
# Runs of two or more spaces; tabs are made spaces first. A pattern that starts with a literal
# is searched at C speed: [ \t]{2,} took 190 µs over a 17 KB body, this takes 10.
_SPACE_RUN = re.compile(rb"  +")
_FOLD = 72  # characters of a folded tag value per line, after the leading space
# A CRLF that ends a header field: one not followed by the whitespace of a folded line.
_FIELD_END = re.compile(rb"\r\n(?![ \t])")


class DkimError(ValueError):
    """The DKIM settings cannot sign mail."""


@dataclass(frozen=True, slots=True)
class _Key:
    """One signing key: the tags that name it and how it signs the header hash input."""

    algorithm: bytes  # the a= tag
    selector: bytes
    sign: Callable[[bytes], bytes]


class DkimSigner:
    """Make the DKIM-Signature header(s) of a message; construct once, sign every message."""

    def __init__(
        self,
        selector: str,
        domain: str,
        private_key_pem: str | bytes,
        *,
        ed25519_selector: str | None = None,
        ed25519_private_key: str | bytes | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self._domain = _dns_name(domain, "DKIM_DOMAIN")
        self._keys = [
            _Key(b"rsa-sha256", _dns_name(selector, "DKIM_SELECTOR"), _rsa_signer(private_key_pem))
        ]
        if ed25519_selector or ed25519_private_key:
            if not (ed25519_selector and ed25519_private_key):
                raise DkimError("DKIM_ED25519_SELECTOR and DKIM_ED25519_PRIVATE_KEY go together")
            # RFC 8463 5: Ed25519 alongside RSA, so receivers that know only RSA still verify.
            self._keys.append(
                _Key(
                    b"ed25519-sha256",
                    _dns_name(ed25519_selector, "DKIM_ED25519_SELECTOR"),
                    _ed25519_signer(ed25519_private_key),
                )
            )
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings) -> DkimSigner | None:
        """Return a signer when DKIM is configured, None when it is not."""
        values = (settings.dkim_selector, settings.dkim_domain, settings.dkim_private_key)
        ed25519 = (settings.dkim_ed25519_selector, settings.dkim_ed25519_private_key)
        if not any(values):
            if any(ed25519):
                raise DkimError("Ed25519 signing needs DKIM_SELECTOR, DKIM_DOMAIN and the RSA key")
            return None
        if not all(values):
            raise DkimError("DKIM_SELECTOR, DKIM_DOMAIN and DKIM_PRIVATE_KEY go together")
        return cls(
            settings.dkim_selector,
            settings.dkim_domain,
            settings.dkim_private_key,
            ed25519_selector=settings.dkim_ed25519_selector,
            ed25519_private_key=settings.dkim_ed25519_private_key,
        )

    def sign(self, message: bytes) -> bytes:
        """Return the DKIM-Signature header line(s) to put in front of the message."""
        end = message.find(b"\r\n\r\n")
        if end == -1:
            head, body = message, b""
        else:
            head, body = message[: end + 2], message[end + 4 :]
        body_hash = base64.b64encode(hashlib.sha256(canonical_body(body)).digest())
        signed_input = b"".join(_selected_headers(head))
        timestamp = str(int(self._clock())).encode("ascii")
        signatures = []
        for key in self._keys:
            unsigned = (
                b"DKIM-Signature: v=1; a=" + key.algorithm + b"; c=relaxed/relaxed;\r\n"
                b" d=" + self._domain + b"; s=" + key.selector + b"; t=" + timestamp + b";\r\n"
                b" " + _H_TAG + b"\r\n"
                b" bh=" + body_hash + b";\r\n"
                b" b="
            )
            # The signature header itself is hashed last, canonicalised, with an empty b= and
            # without its line break (RFC 6376 3.7).
            name, _, value = unsigned.partition(b":")
            digest_input = signed_input + canonical_header(name, value)[:-2]
            signature = base64.b64encode(key.sign(digest_input))
            signatures.append(unsigned + _fold(signature) + b"\r\n")
        return b"".join(signatures)


def canonical_body(body: bytes) -> bytes:
    """Return the relaxed canonical form of a CRLF body (RFC 6376 3.4.4)."""
    if not body.endswith(b"\r\n"):
        # SMTP ends every message with CRLF (smtplib adds it), so that is what a receiver hashes.
        body += b"\r\n"
    body = _SPACE_RUN.sub(b" ", body.replace(b"\t", b" ")).replace(b" \r\n", b"\r\n")
    body = body.rstrip(b"\r\n")  # only CRLFs are left at the end: trailing empty lines go
    return body + b"\r\n" if body else b""


def canonical_header(name: bytes, value: bytes) -> bytes:
    """Return `name:value` CRLF in relaxed form: lower-case name, unfolded, whitespace squeezed."""
    value = _WSP_RUN.sub(b" ", value.replace(b"\r\n", b"")).strip(b" ")
    return name.rstrip(b" \t").lower() + b":" + value + b"\r\n"


def _selected_headers(head: bytes) -> list[bytes]:
    """Return the canonical signed headers in SIGNED_HEADERS order, absent ones as nothing.

    A name listed n times takes the message's last n instances of it, bottom up (RFC 6376 5.4.2).
    """
    fields: dict[bytes, list[tuple[bytes, bytes]]] = {}
    # One item per header field, folded lines kept with it; the head ends in CRLF, so drop the
    # empty last item.
    for field in _FIELD_END.split(head)[:-1]:
        name, colon, value = field.partition(b":")
        if not colon:
            raise ValueError(f"not a header field: {field[:40]!r}")
        lowered = name.rstrip(b" \t").lower()
        if lowered in _WANTED:
            fields.setdefault(lowered, []).append((name, value))
    selected = []
    for wanted in SIGNED_HEADERS:
        instances = fields.get(wanted)
        if instances:
            selected.append(canonical_header(*instances.pop()))
    return selected


def _h_tag(names: tuple[bytes, ...]) -> bytes:
    """Return the h= value, folded after a colon wherever a line would pass _FOLD characters."""
    lines, line = [], b"h="
    for n, name in enumerate(names):
        piece = name + (b":" if n < len(names) - 1 else b";")
        if len(line) + len(piece) > _FOLD:
            lines.append(line)
            line = b""
        line += piece
    return b"\r\n ".join([*lines, line])


def _fold(value: bytes) -> bytes:
    """Fold a base64 tag value over lines of _FOLD characters (whitespace in it is ignored)."""
    return b"\r\n ".join(value[i : i + _FOLD] for i in range(0, len(value), _FOLD))


_H_TAG = _h_tag(SIGNED_HEADERS)


def _dns_name(value: str, setting: str) -> bytes:
    if not _DNS_NAME.match(value or ""):
        raise DkimError(f"{setting} must be a DNS name, got {value!r}")
    return value.encode("ascii")


def _key_bytes(key: str | bytes) -> bytes:
    """Return a key's bytes, turning literal "\\n" (how one-line environment values carry a PEM's
    line breaks) into real ones."""
    text = key.decode("ascii", "replace") if isinstance(key, bytes) else key
    return text.strip().replace("\\r\\n", "\n").replace("\\n", "\n").encode("ascii", "replace")


def _rsa_signer(private_key_pem: str | bytes) -> Callable[[bytes], bytes]:
    try:
        key = serialization.load_pem_private_key(_key_bytes(private_key_pem), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise DkimError(f"DKIM_PRIVATE_KEY is not a usable PEM private key: {exc}") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise DkimError("DKIM_PRIVATE_KEY must be an RSA key (put Ed25519 in DKIM_ED25519_*)")
    if key.key_size < MIN_RSA_BITS:
        raise DkimError(f"DKIM_PRIVATE_KEY has {key.key_size} bits; receivers need >= 1024")
    pkcs1v15, sha256 = padding.PKCS1v15(), hashes.SHA256()
    return lambda data: key.sign(data, pkcs1v15, sha256)


def _ed25519_signer(private_key: str | bytes) -> Callable[[bytes], bytes]:
    """Load a PEM (PKCS#8) Ed25519 key, or the base64 32-byte seed dkimpy's dknewkey writes."""
    data = _key_bytes(private_key)
    try:
        if data.startswith(b"-----"):
            key = serialization.load_pem_private_key(data, password=None)
        else:
            key = ed25519.Ed25519PrivateKey.from_private_bytes(
                base64.b64decode(data, validate=True)
            )
    except (ValueError, TypeError, UnsupportedAlgorithm, binascii.Error) as exc:
        raise DkimError(f"DKIM_ED25519_PRIVATE_KEY is not a usable key: {exc}") from exc
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise DkimError("DKIM_ED25519_PRIVATE_KEY must be an Ed25519 key")
    # RFC 8463 3: Ed25519-SHA256 signs the SHA-256 digest of the header hash input.
    return lambda data: key.sign(hashlib.sha256(data).digest())
