"""Amazon SNS message verification and subscription confirmation.

An SNS POST is trusted only if its signature verifies against a certificate fetched over HTTPS
from an SNS host; see https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html
"""

from __future__ import annotations

import base64
import re
import urllib.error
import urllib.request
from collections.abc import Callable, MutableMapping
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# sns.<region>.amazonaws.com, e.g. sns.eu-west-1.amazonaws.com or sns.us-gov-west-1.amazonaws.com.
SNS_HOST = re.compile(r"^sns\.[a-z]{2}(?:-[a-z]+)+-\d+\.amazonaws\.com$")
TIMEOUT_SECONDS = 10
MAX_RESPONSE_BYTES = 64 * 1024
CERT_CACHE_SIZE = 16

# The fields each message type signs, in the order AWS concatenates them.
SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
SIGNED_FIELDS["UnsubscribeConfirmation"] = SIGNED_FIELDS["SubscriptionConfirmation"]
HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}

CertFetcher = Callable[[str], bytes]


class SnsVerificationError(Exception):
    """The message cannot be shown to come from Amazon SNS."""


def is_sns_url(url: str) -> bool:
    """Say whether the URL is HTTPS on an SNS host (and nothing that could smuggle another)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    return (
        parts.scheme == "https"
        and port in (None, 443)
        and "@" not in parts.netloc
        and SNS_HOST.match(parts.hostname or "") is not None
    )


def canonical_string(message: dict) -> bytes:
    """Build the string SNS signs: each present signed field as `name\\nvalue\\n`."""
    kind = message.get("Type")
    names = SIGNED_FIELDS.get(kind) if isinstance(kind, str) else None
    if names is None:
        raise SnsVerificationError(f"Unknown SNS message type {kind!r}.")
    lines = []
    for name in names:
        value = message.get(name)
        if value is None:
            if name == "Subject":  # the only optional signed field
                continue
            raise SnsVerificationError(f"The signed field {name} is missing.")
        if not isinstance(value, str):
            raise SnsVerificationError(f"The signed field {name} is not a string.")
        lines.append(f"{name}\n{value}\n")
    return "".join(lines).encode("utf-8")


def verify_message(
    message: dict, fetch_cert: CertFetcher, cache: MutableMapping[str, x509.Certificate]
) -> None:
    """Raise SnsVerificationError unless the message carries a valid SNS signature."""
    algorithm = HASHES.get(str(message.get("SignatureVersion")))
    if algorithm is None:
        raise SnsVerificationError("Unsupported or missing SignatureVersion.")
    cert_url = message.get("SigningCertURL")
    if not isinstance(cert_url, str) or not is_sns_url(cert_url):
        raise SnsVerificationError("SigningCertURL is not an HTTPS URL on an Amazon SNS host.")
    try:
        signature = base64.b64decode(message.get("Signature") or "", validate=True)
    except (ValueError, TypeError) as exc:  # binascii.Error is a ValueError
        raise SnsVerificationError("The Signature is not valid base64.") from exc
    if not signature:
        raise SnsVerificationError("The message is not signed.")
    signed = canonical_string(message)
    public_key = _certificate(cert_url, fetch_cert, cache).public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise SnsVerificationError("The signing certificate does not hold an RSA key.")
    try:
        public_key.verify(signature, signed, padding.PKCS1v15(), algorithm())
    except InvalidSignature as exc:
        raise SnsVerificationError("The signature does not match the message.") from exc


def _certificate(url: str, fetch_cert: CertFetcher, cache) -> x509.Certificate:
    cert = cache.get(url)
    if cert is None:
        try:
            cert = x509.load_pem_x509_certificate(fetch_cert(url))
        except (OSError, ValueError) as exc:
            raise SnsVerificationError(f"Could not load the signing certificate: {exc}") from exc
        if len(cache) >= CERT_CACHE_SIZE:
            cache.clear()  # SNS rotates certificates rarely; a small cache is plenty
        cache[url] = cert
    return cert


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """Stay on the host that was checked: a redirect could lead anywhere."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(_RefuseRedirects)


def _get(url: str) -> bytes:
    if not is_sns_url(url):
        raise ValueError(f"refusing to fetch {url!r}: not an HTTPS URL on an Amazon SNS host")
    with _opener.open(url, timeout=TIMEOUT_SECONDS) as response:
        return response.read(MAX_RESPONSE_BYTES)


def fetch_certificate(url: str) -> bytes:
    """Download an SNS signing certificate (PEM)."""
    return _get(url)


def confirm_subscription(url: str) -> None:
    """Confirm an SNS subscription by visiting its SubscribeURL."""
    _get(url)
