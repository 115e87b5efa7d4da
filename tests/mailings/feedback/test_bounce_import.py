"""`clarion bounces import`: DSNs from a bounce mailbox."""

from __future__ import annotations

import mailbox
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.mailings.feedback.bounce_import import bounces_cli
from app.mailings.models import BounceEvent, BounceKind
from app.supporters.models import SubscriptionStatus, Supporter
from tests.factories import make_delivery, make_mailing, make_supporter

DATA = Path(__file__).parent / "data"
FIXTURES = [
    "rfc3464_hard.eml",
    "postfix_hard.eml",
    "exim_plain.eml",
    "delayed.eml",
    "not_a_bounce.eml",
]


@pytest.fixture
def recipients():
    """Supporters and deliveries matching the Message-IDs quoted in the fixture DSNs."""
    mailing = make_mailing()
    people = {}
    for email, message_id in [
        ("bob@example.org", "<0a1b2c3d4e5f60718293a4b5c6d7e8f9@clarion.test>"),
        ("cara@example.com", "<f0e1d2c3b4a5968778695a4b3c2d1e0f@clarion.test>"),
        ("dan@example.org", "<d00d1e5500000000000000000000beef@clarion.test>"),
    ]:
        supporter = make_supporter(email)
        make_delivery(mailing, supporter, message_id)
        people[email.split("@")[0]] = supporter
    db.session.commit()
    return people


def make_mbox(path: Path, names=FIXTURES) -> Path:
    box = mailbox.mbox(path)
    for name in names:
        box.add((DATA / name).read_bytes())
    box.flush()
    box.close()
    return path


def run_import(app, path: Path):
    result = app.test_cli_runner().invoke(bounces_cli, ["import", str(path)])
    assert result.exit_code == 0, result.output
    return result.output


def events() -> dict[str, BounceEvent]:
    return {e.payload["recipient"]: e for e in db.session.scalars(select(BounceEvent))}


def test_import_mbox_records_hard_and_soft_bounces_and_reimport_is_a_no_op(
    app, tmp_path, recipients
):
    path = make_mbox(tmp_path / "bounces.mbox")

    output = run_import(app, path)

    assert (
        "Read 5 messages: 2 hard bounces, 1 soft bounces, 1 for unknown recipients, "
        "0 duplicates (already recorded), 1 not recognised as bounces, 0 unreadable; "
        "2 supporters suppressed." in output
    )
    bob = db.session.get(Supporter, recipients["bob"].id)
    cara = db.session.get(Supporter, recipients["cara"].id)
    dan = db.session.get(Supporter, recipients["dan"].id)
    assert bob.status == cara.status == SubscriptionStatus.BOUNCED
    assert (bob.history[-1].channel, bob.history[-1].actor) == ("bounce", "dsn")
    assert (dan.status, dan.soft_bounce_count) == (SubscriptionStatus.SUBSCRIBED, 1)

    found = events()
    assert set(found) == {
        "ann.gone@example.net",
        "bob@example.org",
        "cara@example.com",
        "dan@example.org",
    }
    assert found["ann.gone@example.net"].supporter_id is None
    assert found["bob@example.org"].kind == BounceKind.HARD
    assert found["bob@example.org"].delivery_id is not None  # linked by text/rfc822-headers
    assert found["cara@example.com"].delivery_id is not None  # linked by the quoted headers
    assert found["dan@example.org"].kind == BounceKind.SOFT
    assert "5.1.1" in found["bob@example.org"].detail
    assert found["bob@example.org"].external_id == (
        "dsn:20240515140211.9E4C21C0F3A@mail.example.org:bob@example.org"
    )

    again = run_import(app, path)

    assert "0 hard bounces, 0 soft bounces, 0 for unknown recipients, 4 duplicates" in again
    assert db.session.scalar(select(func.count()).select_from(BounceEvent)) == 4
    dan = db.session.get(Supporter, recipients["dan"].id)
    assert dan.soft_bounce_count == 1


def test_repeated_delay_warnings_for_one_message_count_once(app, tmp_path, recipients):
    later = (
        (DATA / "delayed.eml")
        .read_bytes()
        .replace(
            b"<20240517120000.AA11BB22CC@mail.example.org>",
            b"<20240518120000.DD33EE44FF@mail.example.org>",
        )
    )
    eml_dir = tmp_path / "maildrop"
    eml_dir.mkdir()
    shutil.copy(DATA / "delayed.eml", eml_dir / "1.eml")
    (eml_dir / "2.eml").write_bytes(later)

    output = run_import(app, eml_dir)

    assert "Read 2 messages: 0 hard bounces, 1 soft bounces" in output
    assert "1 duplicates" in output
    assert db.session.get(Supporter, recipients["dan"].id).soft_bounce_count == 1


def test_import_single_eml_file(app, recipients):
    output = run_import(app, DATA / "postfix_hard.eml")
    assert "Read 1 messages: 1 hard bounces" in output
    assert db.session.get(Supporter, recipients["bob"].id).status == SubscriptionStatus.BOUNCED


def test_import_maildir(app, tmp_path, recipients):
    box = mailbox.Maildir(tmp_path / "Maildir")
    for name in ("exim_plain.eml", "not_a_bounce.eml"):
        box.add((DATA / name).read_bytes())
    box.close()

    output = run_import(app, tmp_path / "Maildir")

    assert "Read 2 messages: 1 hard bounces" in output
    assert "1 not recognised as bounces" in output
    assert db.session.get(Supporter, recipients["cara"].id).status == SubscriptionStatus.BOUNCED


def test_import_of_something_that_is_not_mail_changes_nothing(app, tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01\x02 not an email at all \xff")
    output = run_import(app, junk)
    # flufl.bounce's detectors trip over a message with no From; it is counted, not fatal.
    assert "Read 1 messages" in output and "1 unreadable" in output
    assert db.session.scalar(select(func.count()).select_from(BounceEvent)) == 0


def test_import_of_a_missing_file_is_a_clear_error(app, tmp_path):
    result = app.test_cli_runner().invoke(bounces_cli, ["import", str(tmp_path / "nope.mbox")])
    assert result.exit_code == 2
    assert "does not exist" in result.output
