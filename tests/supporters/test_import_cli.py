"""`clarion supporters import / import-errors / export`."""

from __future__ import annotations

import csv
import io
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from app.extensions import db
from app.queues import get_queue
from app.supporters.models import ImportStatus, Supporter, SupporterImport

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PEOPLE = (
    "Email Address;First Name;Surname;Member No\n"
    "ann@example.org;Ann;Lee;7\n"
    "nobody;No;Body;8\n"
    "ANN@example.org;Annie;;\n"
    "bob@example.org;Bob;Ray;9\n"
)


def test_import_prints_summary_and_rejections_can_be_downloaded(app, tmp_path):
    path = tmp_path / "people.csv"
    path.write_text(PEOPLE, encoding="utf-8")
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["supporters", "import", str(path), "--list", "Members", "--tag", "cli"]
    )
    assert result.exit_code == 0, result.output
    supporter_import = db.session.scalar(select(SupporterImport))
    assert f"Import {supporter_import.id} done: 2 created, 0 updated, 0 unchanged, 1 rejected" in (
        result.output
    )
    assert f"clarion supporters import-errors {supporter_import.id}" in result.output
    ann = db.session.scalar(select(Supporter).where(Supporter.email == "ann@example.org"))
    assert (ann.first_name, ann.last_name, ann.custom_fields) == (
        "Annie",
        "Lee",
        {"member_no": "7"},
    )

    report = tmp_path / "rejected.csv"
    result = runner.invoke(
        args=["supporters", "import-errors", str(supporter_import.id), "-o", str(report)]
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(report.read_text(encoding="utf-8"))))
    assert rows[0] == ["row", "reason", "raw"]
    assert rows[1][0] == "3" and rows[1][1].startswith("invalid email")

    result = runner.invoke(args=["supporters", "export", "--list", "Members"])
    assert result.exit_code == 0, result.output
    exported = list(csv.DictReader(io.StringIO(result.output)))
    assert sorted(r["email"] for r in exported) == ["ann@example.org", "bob@example.org"]

    out = tmp_path / "all.csv"
    result = runner.invoke(args=["supporters", "export", "-o", str(out)])
    assert result.exit_code == 0 and out.read_text(encoding="utf-8").startswith("email,")


def test_failed_import_exits_non_zero_with_the_reason(app, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("name\nAnn\n", encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["supporters", "import", str(path)])
    assert result.exit_code == 1
    assert "no email column" in result.output


def test_unknown_list_and_import_are_clear_errors(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["supporters", "export", "--list", "Nope"])
    assert result.exit_code == 1 and "no list named 'Nope'" in result.output
    result = runner.invoke(args=["supporters", "import-errors", "999999"])
    assert result.exit_code == 1 and "no import 999999" in result.output


def test_background_import_is_queued(app, tmp_path, settings, redis_conn):
    path = tmp_path / "people.csv"
    path.write_text(PEOPLE, encoding="utf-8")
    result = app.test_cli_runner().invoke(
        args=["supporters", "import", str(path), "--background", "--tag", "later"]
    )
    assert result.exit_code == 0, result.output
    supporter_import = db.session.scalar(select(SupporterImport))
    assert f"Queued import {supporter_import.id}" in result.output
    assert supporter_import.status == ImportStatus.QUEUED
    assert supporter_import.tag_names == ["later"]
    assert Path(supporter_import.stored_path).read_text(encoding="utf-8") == PEOPLE
    queue = get_queue(settings, "imports")
    assert f"import-{supporter_import.id}" in queue.job_ids


def test_sqlite_path_through_the_real_command(tmp_path):
    """The SQLite writer (local development) keeps the same rules, end to end."""
    database = tmp_path / "local.db"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{database}",
        "IMPORT_DIR": str(tmp_path / "imports"),
    }
    clarion = [str(Path(sys.executable).parent / "clarion")]

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*clarion, *args], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True
        )

    assert run("db", "upgrade").returncode == 0
    path = tmp_path / "people.csv"
    path.write_text(PEOPLE, encoding="utf-8")
    first = run("supporters", "import", str(path), "--list", "Members", "--tag", "x")
    assert "2 created, 0 updated, 0 unchanged, 1 rejected" in first.stdout, first.stderr
    with sqlite3.connect(database) as conn:
        conn.execute(
            "UPDATE supporters SET status = 'unsubscribed' WHERE email = 'bob@example.org'"
        )
    path.write_text(
        "email,first_name,status\nbob@example.org,Robert,subscribed\n", encoding="utf-8"
    )
    second = run("supporters", "import", str(path), "--list", "Members")
    assert "0 created, 1 updated, 0 unchanged" in second.stdout, second.stderr
    third = run("supporters", "import", str(path), "--list", "Members")
    assert "0 created, 0 updated, 1 unchanged" in third.stdout, third.stderr
    with sqlite3.connect(database) as conn:
        assert conn.execute(
            "SELECT first_name, status FROM supporters WHERE email = 'bob@example.org'"
        ).fetchall() == [("Robert", "unsubscribed")]
        assert conn.execute("SELECT count(*) FROM list_memberships").fetchone() == (2,)
        assert conn.execute("SELECT count(*) FROM supporter_tags").fetchone() == (2,)
        assert conn.execute("SELECT count(*) FROM subscription_changes").fetchone() == (2,)
    exported = run("supporters", "export", "--list", "Members")
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert {r["email"]: r["member_no"] for r in rows} == {
        "ann@example.org": "7",
        "bob@example.org": "9",
    }
