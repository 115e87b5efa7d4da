"""Time OSDI people pages (first and last) beside /api/v1/supporters, and a full Parsons sync.

Builds a scratch PostgreSQL database `clarion_bench_osdi` (dropped and re-created), migrates it
and fills it with generate_series: --supporters supporters (the block counters of
app/osdi/models.py filled by their trigger, as any insert fills them). Then, through the Flask
test client with an analyst token, min/median/p95 of the server time of page 1 and of the last
page (40,000 at 1,000,000 people, 25 a page) of GET /api/osdi/v1/people, beside the same pages
of GET /api/v1/supporters (page_size=25, OFFSET paging). Target (issue #13): ≤ 100 ms for any
OSDI page. Last, Parsons 6.1.0's ActionNetwork.get_people() (its page loop, unchanged but for
the base URL) against the app served on a loopback port: every person once, in one figure.

    .venv/bin/python bench/bench_osdi.py [--supporters N] [--runs N] [--no-sync]
                                         [--admin-url postgresql://…/postgres]
                                         [--quick]   (or BENCH_QUICK=1: 5,000 supporters)
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import statistics
import threading
import time
import warnings
from dataclasses import replace

import psycopg
from werkzeug.serving import make_server

from app import create_app
from app.auth.services import create_token
from app.config import Settings, normalise_database_url
from app.extensions import db

with warnings.catch_warnings():  # Parsons warns on import that it installs only core extras
    warnings.simplefilter("ignore", RuntimeWarning)
    import parsons.action_network.action_network as action_network
    from parsons import ActionNetwork

# `make bench-smoke` sets a suffix and its own Redis db so it never meets a full run or pytest.
DB_NAME = "clarion_bench_osdi" + os.environ.get("BENCH_DB_SUFFIX", "")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
QUICK = {"supporters": 5_000, "runs": 3}
PAGE_TARGET_MS = 100
PER_PAGE = 25

FILL_SQL = """
    INSERT INTO supporters (email, first_name, last_name, postcode, country, custom_fields,
                            status, soft_bounce_count, created_at, updated_at)
    SELECT 'person' || g || '@example.org', 'Given' || mod(g, 997), 'Family' || mod(g, 991),
           'N' || mod(g, 20) || ' ' || mod(g, 9) || 'AB', 'GB',
           jsonb_build_object('town', 'Town ' || mod(g, 50)),
           (CASE WHEN mod(g, 10) = 0 THEN 'unsubscribed' ELSE 'subscribed' END)
             ::subscription_status,
           0, now() - (%(supporters)s - g) * interval '1 minute',
           now() - (%(supporters)s - g) * interval '1 minute'
    FROM generate_series(1, %(supporters)s) AS g
"""


def percentile_95(timings: list[float]) -> float:
    ordered = sorted(timings)
    return ordered[min(len(ordered) - 1, round(0.95 * len(ordered)) - 1)]


def figures(timings: list[float]) -> str:
    return f"{min(timings):8.1f} {statistics.median(timings):7.1f} {percentile_95(timings):7.1f}"


def time_get(client, path: str, headers: dict, runs: int, expect: int) -> list[float]:
    client.get(path, headers=headers)  # warm
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(path, headers=headers)
        body = response.get_json()
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code, body)
        items = body["_embedded"]["osdi:people"] if "_embedded" in body else body["items"]
        assert len(items) == expect, (path, len(items), expect)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", default=ADMIN_URL)
    parser.add_argument(
        "--supporters", type=int, default=int(os.environ.get("BENCH_SUPPORTERS", 1_000_000))
    )
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--no-sync", action="store_true", help="skip the full Parsons sync")
    parser.add_argument("--quick", action="store_true", help="small sizes (also BENCH_QUICK=1)")
    args = parser.parse_args()
    if args.quick or os.environ.get("BENCH_QUICK") == "1":
        parser.set_defaults(**QUICK)  # explicit options still win
        args = parser.parse_args()

    with psycopg.connect(args.admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    url = args.admin_url.rsplit("/", 1)[0] + "/" + DB_NAME
    settings = replace(
        Settings.from_env({}), database_url=normalise_database_url(url), redis_url=REDIS_URL
    )
    app = create_app(settings)
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        started = time.perf_counter()
        with db.engine.begin() as conn:
            conn.exec_driver_sql(FILL_SQL, {"supporters": args.supporters})
        _, secret = create_token("bench-osdi", "analyst")
        db.session.commit()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        print(f"filled in {time.perf_counter() - started:.1f}s: {args.supporters:,} supporters")

        last = math.ceil(args.supporters / PER_PAGE)
        last_size = args.supporters - (last - 1) * PER_PAGE
        osdi = {"OSDI-API-Token": secret}
        bearer = {"Authorization": f"Bearer {secret}"}
        rows = [
            ("OSDI people page 1", f"/api/osdi/v1/people?page=1&per_page={PER_PAGE}", osdi,
             PER_PAGE, PAGE_TARGET_MS),
            (f"OSDI people page {last:,} (last)",
             f"/api/osdi/v1/people?page={last}&per_page={PER_PAGE}", osdi, last_size,
             PAGE_TARGET_MS),
            ("/api/v1/supporters page 1", f"/api/v1/supporters?page=1&page_size={PER_PAGE}",
             bearer, PER_PAGE, None),
            (f"/api/v1/supporters page {last:,} (last)",
             f"/api/v1/supporters?page={last}&page_size={PER_PAGE}", bearer, last_size, None),
        ]  # fmt: skip
        client = app.test_client()
        width = max(len(r[0]) for r in rows)
        print(f"{'page':{width}}  server ms:  min  median     p95  target")
        over = []
        for label, path, headers, expect, target in rows:
            timings = time_get(client, path, headers, args.runs, expect)
            verdict = "  (none)"
            if target is not None:
                verdict = f"{target:5d} {'OVER' if percentile_95(timings) > target else 'OK'}"
                if percentile_95(timings) > target:
                    over.append(label)
            print(f"{label:{width}}  {figures(timings)}  {verdict}")
        db.session.remove()

    if not args.no_sync:
        print(sync_line(app, secret, args.supporters))
    print(
        f"summary: {args.supporters:,} supporters, {args.runs} runs a page: OSDI pages "
        + (f"OVER target: {', '.join(over)}" if over else f"within {PAGE_TARGET_MS} ms")
        + (" (the target is set for 1,000,000 supporters)" if args.supporters < 1_000_000 else "")
    )


def sync_line(app, secret: str, supporters: int) -> str:
    """Run Parsons' get_people() page loop against the app on a loopback port; time it."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        action_network.API_URL = f"http://127.0.0.1:{server.server_port}/api/osdi/v1"
        an = ActionNetwork(api_token=secret)
        started = time.perf_counter()
        people = an.get_people()
        seconds = time.perf_counter() - started
    finally:
        server.shutdown()
        thread.join(timeout=10)
    ids = {person["identifiers"][0] for person in people}
    assert len(people) == supporters == len(ids), (len(people), len(ids), supporters)
    requests_made = math.ceil(supporters / PER_PAGE) + 1  # the empty page ends the loop
    return (
        f"Parsons get_people() full sync: {supporters:,} people, each once, in {seconds:.1f} s "
        f"({requests_made:,} requests, {seconds / requests_made * 1000:.1f} ms a page, "
        f"{supporters / seconds:,.0f} people/s)"
    )


if __name__ == "__main__":
    main()
