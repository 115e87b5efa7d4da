"""Cheap checks on the public action forms that stop scripts without troubling people.

A form that takes a typed name and address carries a signed "started" stamp (when the page was
shown) and a honeypot field that people never see. A submission sooner than
PUBLIC_FORM_MIN_SECONDS after the page was shown, or with the honeypot filled, is refused with
the form shown again (the text kept), so a person who was refused loses nothing. They stop naive
scripts only; the rate limits and the confirmation by mail are what bound a determined one.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time

from itsdangerous import BadData, TimestampSigner

HONEYPOT_FIELD = "website"  # a name form-filling scripts like to fill
STARTED_FIELD = "started"
_STARTED_SALT = "clarion.form-started"
_CLIENT_HASH_SALT = b"clarion.client-network"


class FormRefused(Exception):
    """The submission looks automated; `message` says what the person should do."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


TOO_QUICK = (
    "That was quicker than we expected. Please check your details and press the button again."
)


class _StampSigner(TimestampSigner):
    """A TimestampSigner that can sign as of a given time (tests show pages in the past)."""

    def __init__(self, secret_keys: tuple[str, ...], at: float | None = None):
        # itsdangerous signs with the last key and verifies with all: put the signing key last.
        super().__init__(list(reversed(secret_keys)), salt=_STARTED_SALT)
        self._at = at

    def get_timestamp(self) -> int:
        return int(self._at) if self._at is not None else super().get_timestamp()


def started_stamp(secret_keys: tuple[str, ...], bound_to: str, at: float | None = None) -> str:
    """Return the form's signed "page shown at" value, bound to the page it was shown on."""
    return _StampSigner(secret_keys, at).sign(bound_to).decode("ascii")


def check_form(
    secret_keys: tuple[str, ...],
    bound_to: str,
    *,
    stamp: str | None,
    honeypot: str | None,
    min_seconds: float,
    now: float | None = None,
) -> None:
    """Raise FormRefused when the honeypot is filled or the form came back too soon."""
    if (honeypot or "").strip():
        raise FormRefused(TOO_QUICK)
    try:
        value, signed_at = _StampSigner(secret_keys).unsign(stamp or "", return_timestamp=True)
    except (BadData, UnicodeError, ValueError) as exc:
        raise FormRefused(TOO_QUICK) from exc
    if not hmac.compare_digest(value, bound_to.encode()):
        raise FormRefused(TOO_QUICK)
    if (now if now is not None else time.time()) - signed_at.timestamp() < min_seconds:
        raise FormRefused(TOO_QUICK)


def client_network(remote_addr: str | None) -> str:
    """Return the client's address, or its /64 for IPv6 (one household or host gets a /64)."""
    try:
        address = ipaddress.ip_address(remote_addr or "")
    except ValueError:
        return remote_addr or "unknown"
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def client_hash(secret_key: str, remote_addr: str | None) -> str:
    """Return a keyed hash of the client's network: bursts show, the address is not kept."""
    key = hmac.digest(secret_key.encode(), _CLIENT_HASH_SALT, "sha256")
    digest = hmac.new(key, client_network(remote_addr).encode(), hashlib.sha256)
    return digest.hexdigest()[:32]
