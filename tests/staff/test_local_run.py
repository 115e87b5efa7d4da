"""The staff app on the local run's database: SQLite, migrated and loaded as `make run` does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CLARION = str(Path(sys.executable).parent / "clarion")


def test_every_staff_page_opens_on_a_fresh_sqlite_demo_database(tmp_path, settings):
    env = dict(
        os.environ,
        DATABASE_URL=f"sqlite:///{tmp_path / 'clarion.db'}",
        REDIS_URL=settings.redis_url,
        QUEUE_PREFIX=settings.queue_prefix,
        IMPORT_DIR=str(tmp_path / "imports"),
    )

    def run(*args: str) -> str:
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    run(CLARION, "db", "upgrade")
    run(CLARION, "demo", "load")
    password = run(
        CLARION,
        "users",
        "create",
        "admin@clarion.localhost",
        "--role",
        "admin",
        "--password",
        "generate",
    ).strip()
    output = run(
        sys.executable, "-m", "tests.staff.local_run_walk", "admin@clarion.localhost", password
    )
    lines = output.splitlines()
    assert lines[0] == "302 POST /staff/login"
    opened = [line for line in lines[1:] if line.startswith("200 ")]
    # Every area's front page and the demo rows' own pages.
    for path in (
        "/staff/",
        "/staff/supporters/",
        "/staff/mailings/1",
        "/staff/campaigns/1",
        "/staff/results/",
        "/staff/admin/",
        "/staff/imports/",
    ):
        assert f"200 {path}" in lines, output
    assert len(opened) >= 25, output
