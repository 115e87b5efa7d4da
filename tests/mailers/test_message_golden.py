"""Pin the bytes of a built message: a refactor of mailers/message.py must not change them.

Each golden file is the message built from a fixed frozen mailing and recipient, with the three
values that differ per build replaced: the Date and Message-ID headers (checked for their form
here) and the MIME boundary, random per MessageFactory. Everything else (header order, folding,
encoded words, quoted-printable lines, CRLF) must match byte for byte.

If a change to the bytes is intended, rewrite the goldens deliberately and review the diff:
    UPDATE_GOLDEN=1 TEST_RUN_ID=<id> .venv/bin/pytest -n 0 -q tests/mailers/test_message_golden.py
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.mailers.conftest import freeze_mailing, make_factory, make_recipient

GOLDEN_DIR = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

_DATE = re.compile(
    rb"^Date: [A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT\r$", re.M
)
_MESSAGE_ID = re.compile(rb"^Message-ID: <[0-9a-f]{32}@act\.example\.org>\r$", re.M)
_BOUNDARY = re.compile(rb"=_clarion_[0-9a-f]{24}")


def normalise(data: bytes) -> bytes:
    """Replace Date, Message-ID and the boundary, checking each has its usual form."""
    data, dates = _DATE.subn(b"Date: <date>\r", data)
    data, ids = _MESSAGE_ID.subn(b"Message-ID: <message-id>\r", data)
    data, boundaries = _BOUNDARY.subn(b"=_clarion_<boundary>", data)
    assert (dates, ids) == (1, 1), "Date or Message-ID header missing or malformed"
    assert boundaries == 4, "the boundary is declared once and used three times"
    return data


def check_golden(name: str, data: bytes) -> None:
    path = GOLDEN_DIR / name
    actual = normalise(data)
    if UPDATE:
        path.write_bytes(actual)
        pytest.skip(f"rewrote {path}")
    assert path.exists(), f"no golden file {path}; run with UPDATE_GOLDEN=1 to write it"
    expected = path.read_bytes()
    if actual != expected:
        # Show the first differing line rather than two 10 kB byte strings.
        lines = zip(actual.split(b"\r\n"), expected.split(b"\r\n"), strict=False)
        for number, (got, wanted) in enumerate(lines, 1):
            assert got == wanted, f"{name} line {number} differs"
        assert actual == expected, f"{name} differs in length"


@pytest.fixture(scope="module")
def letter_frozen():
    return freeze_mailing(
        "{{ town }} needs you, {{ first_name }}",
        "A preheader for {{ town }}",
        "<mj-section><mj-column><mj-text><p>Hello {{ first_name }} {{ last_name }} of "
        '{{ town }}</p><p><a href="https://act.example.org/petition">Sign</a></p>'
        "</mj-text></mj-column></mj-section>",
        "Hello {{ first_name }} of {{ town }},\n\nSign: https://act.example.org/petition\n",
    )


def test_demo_mailing_matches_its_golden_file(demo_factory):
    built = demo_factory.build(make_recipient())
    check_golden("demo_zoe.eml", built.data)


def test_message_with_custom_fields_prefix_and_escapes_matches_its_golden_file(letter_frozen):
    factory = make_factory(letter_frozen)
    recipient = make_recipient(
        first_name='Pat "PJ" <b>',
        last_name="O'Neil, Jr.",
        town="Zürich & Genève 🚨",
        subject_prefix="[TEST] ",
    )
    check_golden("letter_pat.eml", factory.build(recipient).data)


def test_golden_ignores_only_date_message_id_and_boundary(demo_frozen):
    # Two factories for the same mailing: a new boundary and Message-ID, the same bytes else.
    first = make_factory(demo_frozen).build(make_recipient()).data
    second = make_factory(demo_frozen).build(make_recipient()).data
    assert first != second
    assert normalise(first) == normalise(second)
