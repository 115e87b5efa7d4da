"""What DKIM adds to building a message, side by side in one run on the demo alert:

unsigned, signed by mailers.dkim (RSA-2048; RSA-2048 + Ed25519), and signed by dkimpy (the
pure-Python signer Clarion used before), each as build + sign per message. Every signed message
of the sample is checked with dkimpy's verify first, so a fast but wrong signer cannot win.

    .venv/bin/python bench/bench_dkim.py [--count 5000] [--dkimpy-count 300]
                                         [--quick]   (or BENCH_QUICK=1: small counts, seconds)
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import time
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_message import demo_factory, recipients, time_per_message  # noqa: E402
from mailers.dkim import SIGNED_HEADERS, DkimSigner  # noqa: E402
from mailers.message import MessageFactory  # noqa: E402

DOMAIN = "act.example.org"
QUICK = {"count": 300, "dkimpy_count": 30}


class DkimpySigner:
    """The signer Clarion had before: dkimpy, same canonicalisation and headers."""

    def __init__(self, private_pem: bytes):
        self._key = private_pem

    def sign(self, message: bytes) -> bytes:
        return dkim.sign(
            message,
            b"rsa2026",
            DOMAIN.encode(),
            self._key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=list(SIGNED_HEADERS),
        )


def _pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def signers() -> tuple[dict[str, object], dict[bytes, bytes]]:
    """The signers to compare, and the DNS records that verify them."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    rsa_public = rsa_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    ed_public = ed_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    records = {
        f"rsa2026._domainkey.{DOMAIN}.".encode(): b"k=rsa; p=" + base64.b64encode(rsa_public),
        f"ed2026._domainkey.{DOMAIN}.".encode(): b"k=ed25519; p=" + base64.b64encode(ed_public),
    }
    return {
        "mailers.dkim RSA-2048": DkimSigner("rsa2026", DOMAIN, _pem(rsa_key)),
        "mailers.dkim RSA-2048 + Ed25519": DkimSigner(
            "rsa2026",
            DOMAIN,
            _pem(rsa_key),
            ed25519_selector="ed2026",
            ed25519_private_key=_pem(ed_key),
        ),
        "dkimpy RSA-2048": DkimpySigner(_pem(rsa_key)),
    }, records


def with_signer(unsigned: MessageFactory, frozen, signer) -> MessageFactory:
    """A factory like the bench's demo one, signing with `signer`."""
    return MessageFactory(
        frozen,
        from_name="Elena Marsh, Rights Watch USA",
        from_email="alerts@act.example.org",
        reply_to="info@act.example.org",
        list_id="action-alerts.act.example.org",
        feedback_id="42:alerts:clarion",
        unsubscribe_mailto="unsubscribe@act.example.org",
        message_id_domain=DOMAIN,
        dkim=signer,
    )


def check_verifies(factory: MessageFactory, people, records) -> None:
    """Refuse to time a signer whose signatures dkimpy does not verify."""
    for person in people:
        data = factory.build(person).data
        count = data.count(b"\r\nDKIM-Signature:") + data.startswith(b"DKIM-Signature:")
        for n in range(count):
            if not dkim.DKIM(data).verify(idx=n, dnsfunc=lambda name, timeout=5: records[name]):
                raise SystemExit(f"signature {n} does not verify")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5_000)
    parser.add_argument("--dkimpy-count", type=int, default=300)
    parser.add_argument("--quick", action="store_true", help="small counts (also BENCH_QUICK=1)")
    args = parser.parse_args()
    if args.quick or os.environ.get("BENCH_QUICK") == "1":
        parser.set_defaults(**QUICK)  # explicit options still win
        args = parser.parse_args()

    unsigned, frozen = demo_factory()
    people = recipients(args.count)
    compared, records = signers()
    started = time.perf_counter()
    base_us = time_per_message(unsigned.build, people)
    size = len(unsigned.build(people[0]).data)
    print(f"demo alert, {size / 1024:.1f} KiB unsigned; build (+ sign) per message:")
    print(f"  {'unsigned':34} {base_us:8.1f} µs  ({args.count} messages)")
    signing_us = {}
    for name, signer in compared.items():
        factory = with_signer(unsigned, frozen, signer)
        check_verifies(factory, people[:5], records)
        count = args.dkimpy_count if name.startswith("dkimpy") else args.count
        us = time_per_message(factory.build, people[:count])
        signing_us[name] = us - base_us
        print(f"  {name:34} {us:8.1f} µs  (signing {us - base_us:7.1f} µs; {count} messages)")
    ours, theirs = signing_us["mailers.dkim RSA-2048"], signing_us["dkimpy RSA-2048"]
    print(f"  RSA-2048 signing: mailers.dkim {theirs / ours:.0f}x faster than dkimpy")
    print(f"  ({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
