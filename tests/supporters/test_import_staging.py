"""The import's fast path: columns cleaned at once, COPY into a stage, set-based upsert.

Edge cases of chunks and staging on real PostgreSQL, the column helpers against their per-value
rules, and the same file imported on SQLite (the local run's portable path) for parity.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from app.extensions import db
from app.supporters.csvcells import clean_column, clean_text
from app.supporters.csvformat import SupporterCsv
from app.supporters.import_writers import SUPPRESSED_DETAIL, copy_text
from app.supporters.importer import import_file
from app.supporters.models import (
    ImportRejection,
    ImportStatus,
    ListMembership,
    SubscriptionChange,
    SubscriptionStatus,
    Supporter,
    SupporterTag,
)
from app.supporters.services import change_status

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def write_csv(tmp_path):
    def write(text: str, name: str = "people.csv") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def do_import(settings):
    def run(path, **options):
        result = import_file(path, settings=settings, **options)
        assert result.status == ImportStatus.DONE, result.error
        return result

    return run


def supporter(email: str) -> Supporter:
    return db.session.scalar(select(Supporter).where(Supporter.email == email))


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_duplicates_differing_in_case_in_one_chunk_make_one_supporter(write_csv, do_import):
    result = do_import(
        write_csv(
            "email,first_name,last_name,team\n"
            "Ann@Example.org,Ann,,red\n"
            "ANN@EXAMPLE.ORG,,Lee,\n"
            "ann@example.org,Annie,,\n"
        )
    )
    assert (result.created_count, result.processed_rows) == (1, 3)
    ann = supporter("ann@example.org")
    assert (ann.first_name, ann.last_name, ann.custom_fields) == ("Annie", "Lee", {"team": "red"})
    assert count(SubscriptionChange) == 1


def test_duplicates_in_different_chunks_update_the_first(write_csv, settings):
    rows = [f"p{i}@example.org,P{i}" for i in range(5)] + ["P0@EXAMPLE.ORG,Again"]
    result = import_file(
        write_csv("email,first_name\n" + "\n".join(rows) + "\n"), settings=settings, chunk_size=5
    )
    assert (result.created_count, result.updated_count, result.unchanged_count) == (5, 1, 0)
    assert supporter("p0@example.org").first_name == "Again"
    assert count(SubscriptionChange) == 5


def test_a_bad_row_mid_file_is_reported_and_the_rest_imported(write_csv, settings):
    lines = [f"p{i}@example.org,{i}" for i in range(25)]
    lines[12] = "not-an-email,12"
    lines[17] = "p17@example.org,17,extra"
    result = import_file(
        write_csv("email,n\n" + "\n".join(lines) + "\n"), settings=settings, chunk_size=10
    )
    assert (result.created_count, result.rejected_count, result.processed_rows) == (23, 2, 25)
    reasons = dict(
        db.session.execute(select(ImportRejection.row_number, ImportRejection.reason)).all()
    )
    assert sorted(reasons) == [14, 19]  # the header is row 1
    assert reasons[14].startswith("invalid email") and "3 fields" in reasons[19]
    assert supporter("p13@example.org").custom_fields == {"n": "13"}


def test_a_file_larger_than_a_chunk_with_list_and_tags_reimports_to_nothing(write_csv, settings):
    lines = [f"p{i}@example.org,P{i},{'red' if i % 2 else ''}" for i in range(2500)]
    path = write_csv("email,first_name,team\n" + "\n".join(lines) + "\n")
    options = {"settings": settings, "chunk_size": 1000, "list_name": "Big", "tag_names": ["t"]}
    first = import_file(path, **options)
    assert (first.created_count, first.processed_rows) == (2500, 2500)
    assert supporter("p1@example.org").custom_fields == {"team": "red"}
    assert supporter("p2@example.org").custom_fields == {}  # empty cells are not stored
    before = dict(db.session.execute(select(Supporter.email, Supporter.updated_at)).all())
    again = import_file(path, **options)
    assert (again.created_count, again.updated_count, again.unchanged_count) == (0, 0, 2500)
    db.session.expire_all()
    assert dict(db.session.execute(select(Supporter.email, Supporter.updated_at)).all()) == before
    assert count(SubscriptionChange) == count(ListMembership) == count(SupporterTag) == 2500


def test_unsubscribed_people_stay_so_and_new_suppressed_ones_are_recorded(write_csv, do_import):
    do_import(write_csv("email\nleft@example.org\n"))
    change_status(supporter("left@example.org"), SubscriptionStatus.UNSUBSCRIBED, channel="link")
    db.session.commit()
    result = do_import(
        write_csv(
            "email,first_name,status\n"
            "left@example.org,Lee,subscribed\n"
            "new@example.org,New,complained\n"
        )
    )
    assert (result.created_count, result.updated_count) == (1, 1)
    db.session.expire_all()
    left, new = supporter("left@example.org"), supporter("new@example.org")
    assert (left.status, left.first_name, len(left.history)) == (
        SubscriptionStatus.UNSUBSCRIBED,
        "Lee",
        2,
    )
    assert [(h.old_status, h.new_status, h.detail) for h in new.history] == [
        (None, SubscriptionStatus.COMPLAINED, SUPPRESSED_DETAIL)
    ]


def test_values_copy_would_misread_arrive_unchanged(write_csv, do_import):
    # Backslashes, JSON's own quotes, \N, a tab and a newline inside quotes (spaces once cleaned).
    do_import(
        write_csv(
            "email,first_name,notes,path\n"
            'ann@example.org,"A\\nn","say ""hi"" \\N","C:\\dir\\\tx\nnext"\n'
        )
    )
    ann = supporter("ann@example.org")
    assert ann.first_name == "A\\nn"
    assert ann.custom_fields == {"notes": 'say "hi" \\N', "path": "C:\\dir\\ x next"}


def test_more_custom_columns_than_one_jsonb_call_takes(write_csv, do_import):
    names = [f"f{i}" for i in range(120)]
    do_import(
        write_csv("email," + ",".join(names) + "\n" + "a@example.org," + ",".join(names) + "\n")
    )
    assert supporter("a@example.org").custom_fields == {n: n for n in names}


@given(st.lists(st.text(max_size=12), min_size=1, max_size=8))
def test_clean_column_is_clean_text_for_each_cell(values):
    assert clean_column(values) == [clean_text(v) for v in values]


def test_clean_column_takes_off_the_exporters_quote_but_keeps_apostrophes():
    assert clean_column(["'=1+2", " O'Brien ", "", "'+x"]) == ["=1+2", "O'Brien", None, "+x"]


def test_copy_text_escapes_what_copy_would_read_otherwise():
    text = copy_text([["a\\b", None, "x"], ["t\tu", "v\nw", None]])
    assert text == "a\\\\b\tt\\tu\n\\N\tv\\nw\nx\t\\N\n"


def test_chunks_index_like_rows_and_merge_by_address(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("email,first_name,country\nA@x.org,Ann,gb\nb@x.org,,zz\na@x.org,,\n")
    csv_file = SupporterCsv(path)
    (read, chunk, rejections), *_ = csv_file.chunks(10)
    assert (read, len(chunk), rejections) == (3, 2, [])
    assert [(r.email, r.first_name, r.country, r.row_number) for r in chunk] == [
        ("a@x.org", "Ann", "GB", 4),
        ("b@x.org", None, None, 3),
    ]


def _sqlite_import(tmp_path: Path, path: Path) -> sqlite3.Connection:
    database = tmp_path / "local.db"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}", "IMPORT_DIR": str(tmp_path)}
    clarion = str(Path(sys.executable).parent / "clarion")
    for args in (["db", "upgrade"], ["supporters", "import", str(path), "--list", "L"]):
        done = subprocess.run(
            [clarion, *args], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
    return sqlite3.connect(database)


def test_sqlite_imports_the_same_file_to_the_same_supporters(write_csv, do_import, tmp_path):
    path = write_csv(
        "Email;Vorname;Land;Status;Team;Notiz\n"
        'Zoë@Example.de;Zoë;de;;blau;"a\\b"\n'
        "zoë@example.de;;;;;später\n"
        "bob@example.org;Bob;UK;bounced;;\n"
        "kaputt;X;;;;\n"
        "eve@example.org;'=Eve;xx;;rot;\n"
    )
    result = do_import(path, list_name="L")
    on_postgres = {
        s.email: (s.first_name, s.country, s.status.value, s.custom_fields)
        for s in db.session.scalars(select(Supporter))
    }
    assert (result.created_count, result.rejected_count) == (3, 1)
    with _sqlite_import(tmp_path, path) as conn:
        on_sqlite = {
            email: (first, country, status, json.loads(custom))
            for email, first, country, status, custom in conn.execute(
                "SELECT email, first_name, country, status, custom_fields FROM supporters"
            )
        }
        history = conn.execute("SELECT count(*) FROM subscription_changes").fetchone()[0]
        members = conn.execute("SELECT count(*) FROM list_memberships").fetchone()[0]
    assert on_sqlite == on_postgres
    assert on_postgres["zoë@example.de"] == (
        "Zoë",
        "DE",
        "subscribed",
        {
            "team": "blau",
            "notiz": "später",
        },
    )
    assert on_postgres["eve@example.org"][:2] == ("=Eve", None)
    assert history == count(SubscriptionChange) == 3
    assert members == count(ListMembership) == 3
