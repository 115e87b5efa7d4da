"""The PostgreSQL import written on several connections at once (IMPORT_WRITERS).

These run outside a test transaction (integration): each writer commits on a connection of
its own, which a rolled-back test transaction could neither see nor undo.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest
from sqlalchemy import func, select, text

from app.extensions import db
from app.supporters import import_writers
from app.supporters.csvformat import SupporterCsv
from app.supporters.import_writers import ChunkWriters, PostgresWriter
from app.supporters.importer import import_file, run_import
from app.supporters.models import (
    ImportRejection,
    ImportStatus,
    ListMembership,
    SubscriptionChange,
    SubscriptionStatus,
    Supporter,
    SupporterImport,
    SupporterTag,
)
from app.supporters.services import change_status, count_list_members, member_counts

pytestmark = pytest.mark.integration

CHUNK = 40
BAD_ROWS = sum(1 for i in range(300) if i % 37 == 5)


def _file(tmp_path, name: str = "people.csv"):
    """300 rows in chunks of 40: addresses repeat one and two chunks later (so in chunks
    written at once), some with a new first name, a few rows are bad, one is a known person
    who unsubscribed."""
    lines = ["email,first_name,city"]
    for i in range(300):
        if i % 37 == 5:
            lines.append(f"not-an-address-{i},Bad,")
        elif i % 10 == 3 and i >= CHUNK:
            lines.append(f"p{i - CHUNK}@example.org,Renamed{i},")  # the chunk before
        elif i % 10 == 7 and i >= 2 * CHUNK:
            lines.append(f"p{i - 2 * CHUNK}@example.org,P{i - 2 * CHUNK},")  # unchanged
        else:
            lines.append(f"p{i}@example.org,P{i},Leeds")
    lines.append("gone@example.org,Gone,")
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _known_unsubscribed() -> None:
    person = Supporter(email="gone@example.org", custom_fields={})
    db.session.add(person)
    db.session.flush()
    change_status(person, SubscriptionStatus.UNSUBSCRIBED, channel="test", actor="test")
    db.session.commit()


def _state() -> dict:
    """Everything an import writes, in a form two runs can be compared by."""
    rows = db.session.execute(
        select(Supporter.email, Supporter.first_name, Supporter.status, Supporter.custom_fields)
    ).all()
    history = db.session.execute(
        select(Supporter.email, SubscriptionChange.channel, SubscriptionChange.new_status).join(
            Supporter, Supporter.id == SubscriptionChange.supporter_id
        )
    ).all()
    members = db.session.scalars(
        select(Supporter.email).join(ListMembership, ListMembership.supporter_id == Supporter.id)
    ).all()
    tagged = db.session.scalars(
        select(Supporter.email).join(SupporterTag, SupporterTag.supporter_id == Supporter.id)
    ).all()
    rejected = db.session.scalars(select(ImportRejection.row_number)).all()
    return {
        "supporters": sorted(map(tuple, rows), key=str),
        "history": sorted(map(tuple, history), key=str),
        "members": sorted(members),
        "tagged": sorted(tagged),
        "rejected": sorted(rejected),
    }


def _truncate() -> None:
    db.session.remove()
    tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


def _import(path, settings, writers: int, progress=None):
    done = import_file(
        path,
        settings=replace(settings, import_writers=writers),
        list_name="Appeal",
        tag_names=["urgent"],
        chunk_size=CHUNK,
        progress=progress,
    )
    db.session.expire_all()
    return done


def test_two_writers_write_what_one_writes(settings, tmp_path):
    path = _file(tmp_path)
    _known_unsubscribed()
    calls = []
    two = _import(path, settings, 2, progress=lambda done, total: calls.append(done))
    parallel = _state()
    parallel_counts = (two.created_count, two.updated_count, two.unchanged_count)
    _truncate()
    _known_unsubscribed()
    one = _import(path, settings, 1)
    assert _state() == parallel
    assert (one.created_count, one.updated_count, one.unchanged_count) == parallel_counts
    assert two.status == one.status == ImportStatus.DONE

    # And what that is: each address once, never resubscribed, history for the new only.
    distinct = {email for email, *_ in parallel["supporters"]}
    assert len(parallel["supporters"]) == len(distinct) == two.created_count + 1
    assert ("gone@example.org", "Gone", SubscriptionStatus.UNSUBSCRIBED, {}) in (
        parallel["supporters"]
    )
    imported = [h for h in parallel["history"] if h[1] == "import"]
    assert len(imported) == two.created_count
    assert parallel["members"] == parallel["tagged"] == sorted(distinct)
    assert len(parallel["rejected"]) == two.rejected_count == BAD_ROWS
    first_names = {email: name for email, name, *_ in parallel["supporters"]}
    assert first_names["p3@example.org"] == "Renamed43"  # the later chunk's value won
    assert two.updated_count > 0 and two.unchanged_count > 0
    # Progress is reported in file order, once per chunk, however the writers finished.
    assert calls == sorted(calls) and calls[-1] == two.total_rows == 301
    assert len(calls) == 1 + -(-301 // CHUNK)
    assert member_counts() == count_list_members()
    assert not [t for t in threading.enumerate() if t.name.startswith("import-writer")]


def test_a_chunk_that_meets_another_writers_insert_waits_and_merges(settings, tmp_path):
    """An address another transaction inserts after the chunk looked it up: the chunk's plain
    INSERT waits for that commit, then the chunk runs again through ON CONFLICT."""
    path = tmp_path / "race.csv"
    path.write_text("email,first_name\nrace@example.org,FromFile\nnew@example.org,New\n")
    supporter_import = SupporterImport(
        filename="race.csv", stored_path=str(path), tag_names=[], status=ImportStatus.RUNNING
    )
    db.session.add(supporter_import)
    db.session.commit()
    writer = PostgresWriter(supporter_import, list_id=None, tag_ids=[])
    csv_file = SupporterCsv(path)
    csv_file.check()
    (_, rows, _), *_ = list(csv_file.chunks(10, None))

    other = db.engine.raw_connection()
    cur = other.cursor()
    cur.execute(
        "INSERT INTO supporters (email, last_name, custom_fields, status, soft_bounce_count,"
        " created_at, updated_at) VALUES ('race@example.org', 'Other', '{}', 'subscribed', 0,"
        " now(), now())"
    )
    writers = ChunkWriters(writer, db.engine, 1)
    try:
        written = writers.submit(writer.prepare(rows), [])
        _wait_for_a_lock_wait()
        other.commit()
        created, updated = written.result(timeout=30)
    finally:
        writers.close()
        other.close()
    assert (created, updated) == (1, 1)
    db.session.expire_all()
    race = db.session.scalar(select(Supporter).where(Supporter.email == "race@example.org"))
    assert (race.first_name, race.last_name) == ("FromFile", "Other")
    assert db.session.scalar(select(func.count()).select_from(Supporter)) == 2
    # The history row is the new supporter's only: the other writer's insert made none.
    assert db.session.scalar(select(func.count()).select_from(SubscriptionChange)) == 1


def _wait_for_a_lock_wait() -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        waiting = db.session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"
            )
        )
        db.session.rollback()
        if waiting:
            return
        time.sleep(0.05)
    raise AssertionError("the chunk never waited for the other transaction")


def test_a_failing_chunk_fails_the_import_and_a_rerun_completes_it(settings, tmp_path, monkeypatch):
    path = _file(tmp_path)
    real_write = PostgresWriter.write
    calls = {"n": 0}

    def write_failing_third(self, stage_rows, conn=None):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("the server went away")
        return real_write(self, stage_rows, conn)

    monkeypatch.setattr(import_writers.PostgresWriter, "write", write_failing_third)
    with pytest.raises(RuntimeError):
        _import(path, settings, 2)
    failed = db.session.scalar(select(SupporterImport))
    assert failed.status == ImportStatus.FAILED and "server went away" in failed.error
    assert failed.processed_rows < failed.total_rows
    assert not [t for t in threading.enumerate() if t.name.startswith("import-writer")]

    monkeypatch.setattr(import_writers.PostgresWriter, "write", real_write)
    again = run_import(failed.id, replace(settings, import_writers=2), chunk_size=CHUNK)
    assert again.status == ImportStatus.DONE and again.processed_rows == 301
    rows = db.session.scalar(select(func.count()).select_from(Supporter))
    history = db.session.scalar(select(func.count()).select_from(SubscriptionChange))
    assert rows == history  # every supporter once, with one consent record, after the rerun
    assert db.session.scalar(select(func.count()).select_from(ImportRejection)) == BAD_ROWS
