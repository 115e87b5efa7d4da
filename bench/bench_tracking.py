"""Load-test the open pixel and tracked clicks against a bare Flask app serving the same GIF.

Builds a scratch PostgreSQL database `clarion_bench_tracking` (dropped and re-created) with one
frozen mailing, its links and --supporters deliveries, then serves the real app and a bare Flask
app with identical gunicorn settings and hits each with wrk on loopback. wrk's Lua script
rotates over every recipient's token (and, for clicks, every link), so events are real inserts
rather than dropped duplicates. Target: open and click at least 50 % of bare requests/s.

    .venv/bin/python bench/bench_tracking.py [--duration 10s] [--connections 32] [--supporters N]
                                             [--quick]   (or BENCH_QUICK=1: 1 s runs, seconds)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import psycopg

from app import create_app
from app.config import PROJECT_ROOT, Settings, normalise_database_url
from app.db import utcnow
from app.extensions import db
from app.links.tokens import Purpose, TokenService
from app.mailings.models import Mailing, MailingLink, MailingStatus
from app.queues import redis_connection
from app.tracking.buffer import drain_events, events_key
from mailers.render import freeze

# `make bench-smoke` sets a suffix and its own Redis db so it never meets a full run or pytest.
DB_NAME = "clarion_bench_tracking" + os.environ.get("BENCH_DB_SUFFIX", "")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
QUICK = {"supporters": 500, "duration": "1s", "connections": 4, "warm_up": False}
LINKS = 3
SECRET = "bench-secret-0123456789abcdef-0123456789abcdef"
GUNICORN = ["--workers", "2", "--worker-class", "gthread", "--threads", "8"]
BODY = (
    "<mj-section><mj-column><mj-text>"
    + "".join(
        f'<p><a href="https://act.example.org/{n}">Link {n}</a></p>' for n in range(1, LINKS + 1)
    )
    + "</mj-text></mj-column></mj-section>"
)

FILL_SQL = [
    """
    INSERT INTO supporters (email, custom_fields, status, soft_bounce_count, created_at,
                            updated_at)
    SELECT 'bench' || g || '@example.org', '{}'::jsonb, 'subscribed', 0, now(), now()
    FROM generate_series(1, %(supporters)s) AS g
    """,
    """
    INSERT INTO deliveries (mailing_id, supporter_id, batch_no, status, attempts, sent_at)
    SELECT %(mailing_id)s, id, 0, 'sent', 1, now() - interval '1 day' FROM supporters
    """,
]

APP_MODULE = """
from app import create_app

app = create_app()
if "tracking" not in app.blueprints:  # until app/pages.py registers the tracking routes
    from app.tracking.views import register_tracking

    register_tracking(app)
"""

# The same app with recording switched off: shows what the app costs before any database work.
NO_DB_MODULE = (
    APP_MODULE
    + """
from app.tracking import buffer, services

buffer.push_open = lambda *args, **kwargs: True
services.record_open = lambda *args, **kwargs: None
"""
)

BARE_MODULE = """
import base64

from flask import Flask, Response

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
HEADERS = {
    "Content-Type": "image/gif",
    "Cache-Control": "no-store, no-cache, must-revalidate, private, max-age=0",
    "Pragma": "no-cache",
    "Expires": "0",
}
app = Flask(__name__)


@app.get("/o/<token>.gif")
def pixel(token):
    return Response(PIXEL, 200, HEADERS)
"""

# Each wrk thread starts at its own offset in the shared list of paths and walks it in turn.
LUA = """
local paths = {%s}
local counter = 0
local threads = 0

function setup(thread)
  thread:set("offset", threads * math.floor(#paths / 2))
  threads = threads + 1
end

function init(args)
  counter = tonumber(offset) or 0
end

function request()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1])
end
"""


def build_database(admin_url: str, supporters: int) -> tuple[str, int, list[int]]:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    url = admin_url.rsplit("/", 1)[0] + "/" + DB_NAME
    settings = replace(
        Settings.from_env({}), database_url=normalise_database_url(url), redis_url=REDIS_URL
    )
    app = create_app(settings)
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        frozen = freeze(
            "Act now",
            None,
            BODY,
            None,
            None,
            organisation_name="Rights Watch",
            postal_address="1 Example Street, London",
            templates_dir=PROJECT_ROOT / "templates" / "emails",
        )
        mailing = Mailing(
            name="Bench",
            subject="Act now",
            status=MailingStatus.SENT,
            frozen_subject=frozen.subject_source,
            frozen_html=frozen.html_source,
            frozen_text=frozen.text_source,
            frozen_at=utcnow(),
            links=[
                MailingLink(position=p, url=u or "https://act.example.org/", is_honeypot=h)
                for p, u, h in frozen.links
            ],
        )
        db.session.add(mailing)
        db.session.commit()
        mailing_id = mailing.id
        with db.engine.begin() as conn:
            for statement in FILL_SQL:
                conn.exec_driver_sql(
                    statement, {"mailing_id": mailing_id, "supporters": supporters}
                )
            conn.exec_driver_sql("ANALYZE")
        supporter_ids = [
            row[0] for row in db.session.execute(db.text("SELECT id FROM supporters ORDER BY id"))
        ]
    return url, mailing_id, supporter_ids


def write_lua(path: Path, paths: list[str]) -> None:
    path.write_text(LUA % ",".join(f'"{p}"' for p in paths))


def serve(module_dir: Path, module: str, port: int, env: dict) -> subprocess.Popen:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            *GUNICORN,
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            f"{module}:app",
        ],
        cwd=module_dir,
        env=env,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/o/warmup.gif", timeout=1).read()
            return process
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError(f"gunicorn for {module} did not start on port {port}")


def run_wrk(url: str, script: Path, args) -> dict:
    output = subprocess.run(
        [
            "wrk",
            "-t",
            str(args.threads),
            "-c",
            str(args.connections),
            "-d",
            args.duration,
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return {
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),
        "rps": rps,
        "p99_ms": float(p99.group(1)) * scale,
        "errors": int(non2xx.group(1)) if non2xx else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", default=ADMIN_URL)
    parser.add_argument("--supporters", type=int, default=20_000)
    parser.add_argument("--duration", default="10s")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--port", type=int, default=18231)
    parser.add_argument(
        "--only", nargs="*", default=["bare", "open-no-db", "open", "click"], metavar="RUN"
    )
    parser.add_argument("--warm-up", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--quick", action="store_true", help="small sizes (also BENCH_QUICK=1)")
    args = parser.parse_args()
    if args.quick or os.environ.get("BENCH_QUICK") == "1":
        parser.set_defaults(**QUICK)  # explicit options still win
        args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")

    started = time.perf_counter()
    url, mailing_id, supporter_ids = build_database(args.admin_url, args.supporters)
    print(f"built {len(supporter_ids)} deliveries in {time.perf_counter() - started:.1f}s")
    tokens = TokenService((SECRET,))
    work = Path(tempfile.mkdtemp(prefix="bench_tracking_"))
    (work / "tracked.py").write_text(APP_MODULE)
    (work / "bare.py").write_text(BARE_MODULE)
    (work / "tracked_no_db.py").write_text(NO_DB_MODULE)
    open_paths = [f"/o/{tokens.dumps(Purpose.OPEN, mailing_id, s)}.gif" for s in supporter_ids]
    click_tokens = [tokens.dumps(Purpose.CLICK, mailing_id, s) for s in supporter_ids]
    # Links outer, recipients inner: one recipient's clicks are a whole pass apart, not a burst.
    click_paths = [f"/c/{t}/{n}" for n in range(1, LINKS + 1) for t in click_tokens]
    write_lua(work / "open.lua", open_paths)
    write_lua(work / "click.lua", click_paths)
    write_lua(work / "bare.lua", open_paths)

    env = {
        **os.environ,
        "PYTHONPATH": f"{PROJECT_ROOT}{os.pathsep}{work}",
        "DATABASE_URL": url,
        "REDIS_URL": REDIS_URL,
        "SECRET_KEYS": SECRET,
        "CLARION_ENV": "development",
        # Its own buffer key: a local `clarion worker` must not drain bench events elsewhere.
        "QUEUE_PREFIX": "clarion-bench-tracking",
    }
    settings = Settings.from_env(env)
    redis_connection(settings.redis_url).delete(events_key(settings))
    results = {}
    sent = 0  # tracked requests, each of which must become one buffered event
    for name, module, script in (
        ("bare", "bare", "bare.lua"),
        ("open-no-db", "tracked_no_db", "open.lua"),
        ("open", "tracked", "open.lua"),
        ("click", "tracked", "click.lua"),
    ):
        if name not in args.only:
            continue
        server = serve(work, module, args.port, env)
        try:
            if args.warm_up:
                warm_up = run_wrk(f"http://127.0.0.1:{args.port}", work / script, args)
                if name in ("open", "click"):
                    sent += warm_up["requests"]
            results[name] = run_wrk(f"http://127.0.0.1:{args.port}", work / script, args)
            if name in ("open", "click"):
                sent += results[name]["requests"]
        finally:
            server.terminate()
            server.wait(timeout=30)

    # Opens and clicks wait in Redis until the worker clock drains them: do it here.
    started = time.perf_counter()
    settings = replace(Settings.from_env(env), database_url=normalise_database_url(url))
    drained = 0
    with create_app(settings).app_context():
        while taken := drain_events(settings, max_batches=1000):
            drained += taken
    drain_seconds = time.perf_counter() - started
    with psycopg.connect(url) as conn:
        counts = dict(
            conn.execute(
                "SELECT kind::text, count(*) FROM tracking_events GROUP BY kind"
            ).fetchall()
        )
    shutil.rmtree(work, ignore_errors=True)
    bare = results["bare"]["rps"] if "bare" in results else float("nan")
    print(
        f"gunicorn {' '.join(GUNICORN)}; wrk -t{args.threads} -c{args.connections} "
        f"-d{args.duration}"
        + (" (each run after a warm-up run of the same length)" if args.warm_up else "")
    )
    print(f"{'endpoint':<10} {'req/s':>10} {'p99 ms':>9} {'of bare':>8} {'non-2xx/3xx':>12}")
    for name, result in results.items():
        print(
            f"{name:<10} {result['rps']:>10.0f} {result['p99_ms']:>9.2f} "
            f"{result['rps'] / bare:>8.0%} {result['errors']:>12}"
        )
    print(f"drained {drained} buffered events of {sent} tracked requests in {drain_seconds:.1f}s")
    print(f"tracking_events rows: {counts}")


if __name__ == "__main__":
    main()
