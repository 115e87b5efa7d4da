"""Consent history goes with its supporter, and deliveries forget an erased one: by trigger, not
by a foreign key (migrations 0017 and 0018)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from sqlalchemy import delete, func, select, text

from app.extensions import db
from app.supporters.models import SubscriptionChange, SubscriptionStatus, Supporter
from app.supporters.privacy import erase_supporter_data
from app.supporters.services import change_status

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _people(*emails: str) -> list[Supporter]:
    people = [Supporter(email=email, custom_fields={}) for email in emails]
    db.session.add_all(people)
    db.session.flush()
    for person in people:
        change_status(person, SubscriptionStatus.UNSUBSCRIBED, channel="test", actor="test")
        change_status(person, SubscriptionStatus.SUBSCRIBED, channel="test", actor="test")
    db.session.flush()
    return people


def _history_of(supporter_id: int) -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(SubscriptionChange)
        .where(SubscriptionChange.supporter_id == supporter_id)
    )


def test_a_statement_deleting_supporters_deletes_their_history_and_only_theirs():
    ann, bob, cai = _people("ann@example.org", "bob@example.org", "cai@example.org")
    assert _history_of(ann.id) == 2
    db.session.execute(
        delete(Supporter).where(Supporter.id.in_([ann.id, bob.id])),
        execution_options={"synchronize_session": False},
    )
    assert (_history_of(ann.id), _history_of(bob.id), _history_of(cai.id)) == (0, 0, 2)


def test_erasure_takes_the_consent_history_along():
    (dee,) = _people("dee@example.org")
    erase_supporter_data(dee.id)
    assert _history_of(dee.id) == 0
    assert db.session.scalar(select(func.count()).select_from(SubscriptionChange)) == 0


def test_truncating_supporters_empties_the_history():
    _people("eve@example.org")
    db.session.execute(text("TRUNCATE supporters CASCADE"))
    assert db.session.scalar(select(func.count()).select_from(SubscriptionChange)) == 0


def test_the_orm_still_loads_history_and_its_supporter():
    (fay,) = _people("fay@example.org")
    db.session.expire_all()
    person = db.session.get(Supporter, fay.id)
    assert [c.new_status for c in person.history] == [
        SubscriptionStatus.UNSUBSCRIBED,
        SubscriptionStatus.SUBSCRIBED,
    ]
    assert person.history[0].supporter is person


def test_on_sqlite_a_deleted_supporter_takes_its_history_too_and_its_deliveries_forget_it(
    tmp_path,
):
    database = tmp_path / "local.db"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}"}
    clarion = str(Path(sys.executable).parent / "clarion")
    done = subprocess.run(
        [clarion, "db", "upgrade"], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    with sqlite3.connect(database) as conn:
        for email in ("gil@example.org", "hal@example.org"):
            conn.execute(
                "INSERT INTO supporters (email, custom_fields, status, soft_bounce_count,"
                " created_at, updated_at) VALUES (?, '{}', 'subscribed', 0, 0, 0)",
                (email,),
            )
        conn.execute(
            "INSERT INTO subscription_changes (supporter_id, new_status, channel, changed_at)"
            " SELECT id, 'subscribed', 'test', 0 FROM supporters"
        )
        conn.execute(  # mailing 1 need not exist: SQLite does not enforce the foreign key
            "INSERT INTO deliveries (mailing_id, supporter_id, batch_no, status, attempts)"
            " SELECT 1, id, 0, 'queued', 0 FROM supporters ORDER BY id"
        )
        conn.execute("DELETE FROM supporters WHERE email = 'gil@example.org'")
        recipients = conn.execute("SELECT supporter_id FROM deliveries ORDER BY id").fetchall()
        hal = conn.execute("SELECT id FROM supporters").fetchone()[0]
        left = conn.execute(
            "SELECT s.email FROM subscription_changes c JOIN supporters s ON s.id = c.supporter_id"
        ).fetchall()
        orphans = conn.execute(
            "SELECT count(*) FROM subscription_changes WHERE supporter_id NOT IN"
            " (SELECT id FROM supporters)"
        ).fetchone()[0]
    assert left == [("hal@example.org",)] and orphans == 0
    assert recipients == [(None,), (hal,)]  # migration 0018
