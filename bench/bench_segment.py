"""Time count_segment on a million supporters: "in list A or list B, not tagged T".

Builds a scratch PostgreSQL database `clarion_bench_segment` (dropped and re-created), migrates
it, fills it with generate_series, then prints min/median/p95 of 20 counts. Target: p95 ≤ 200 ms.

    .venv/bin/python bench/bench_segment.py [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]
                                            [--supporters N] [--runs N]
                                            [--quick]   (or BENCH_QUICK=1: 5,000 supporters)
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import replace

import psycopg

from app import create_app
from app.config import Settings, normalise_database_url
from app.extensions import db

# `make bench-smoke` sets a suffix and its own Redis db so it never meets a full run or pytest.
DB_NAME = "clarion_bench_segment" + os.environ.get("BENCH_DB_SUFFIX", "")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
QUICK = {"supporters": 5_000, "runs": 3}

# Of 1,000,000: ~300k members per list, ~150k in both; ~100k tagged; ~5% not subscribed.
FILL_SQL = [
    """
    INSERT INTO supporters (email, country, custom_fields, status, soft_bounce_count,
                            created_at, updated_at)
    SELECT 'bench' || g || '@example.org',
           (ARRAY['GB', 'FR', 'DE', 'US'])[1 + mod(g, 4)],
           '{}'::jsonb,
           (CASE WHEN mod(g, 20) = 0 THEN 'unsubscribed' ELSE 'subscribed' END)::subscription_status,
           0, now(), now()
    FROM generate_series(1, %(supporters)s) AS g
    """,
    "INSERT INTO lists (name, created_at) VALUES ('A', now()), ('B', now())",
    "INSERT INTO tags (name, created_at) VALUES ('T', now())",
    """
    INSERT INTO list_memberships (list_id, supporter_id, created_at)
    SELECT (SELECT id FROM lists WHERE name = 'A'), id, now() FROM supporters WHERE mod(id, 10) < 3
    """,
    """
    INSERT INTO list_memberships (list_id, supporter_id, created_at)
    SELECT (SELECT id FROM lists WHERE name = 'B'), id, now() FROM supporters
    WHERE mod(id, 10) IN (1, 2, 5)
    """,
    """
    INSERT INTO supporter_tags (tag_id, supporter_id)
    SELECT (SELECT id FROM tags WHERE name = 'T'), id FROM supporters WHERE mod(id, 10) = 2
    """,
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", default=ADMIN_URL)
    parser.add_argument("--supporters", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
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

        from app.supporters.segments import (
            _prefer_ordered_index_scans,
            count_segment,
            segment_query,
        )

        upgrade()
        started = time.perf_counter()
        with db.engine.begin() as conn:
            for statement in FILL_SQL:
                conn.exec_driver_sql(statement, {"supporters": args.supporters})
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        print(f"filled in {time.perf_counter() - started:.1f}s")

        ids = dict(db.session.execute(db.text("SELECT name, id FROM lists")).all())
        tag_id = db.session.scalar(db.text("SELECT id FROM tags WHERE name = 'T'"))
        definition = {
            "include_lists": [ids["A"], ids["B"]],
            "exclude_tags": [tag_id],
        }
        timings, count = [], None
        for _ in range(args.runs):
            started = time.perf_counter()
            count = count_segment(definition)
            timings.append((time.perf_counter() - started) * 1000)
            db.session.rollback()
        timings.sort()
        p95 = timings[min(len(timings) - 1, round(0.95 * len(timings)) - 1)]
        print(f"count = {count} (expected {expected_count(args.supporters)})")
        print(
            f"count_segment over {args.runs} runs: min {timings[0]:.1f} ms, "
            f"median {statistics.median(timings):.1f} ms, p95 {p95:.1f} ms (target ≤ 200 ms)"
        )
        sql = db.select(db.func.count()).select_from(segment_query(definition).subquery())
        compiled = sql.compile(db.engine, compile_kwargs={"literal_binds": True})
        with _prefer_ordered_index_scans():
            plan = db.session.execute(db.text(f"EXPLAIN (ANALYZE, BUFFERS) {compiled}")).all()
        print("\n".join(row[0] for row in plan))
        db.session.rollback()


def expected_count(supporters: int) -> int:
    # In A (id%10 in 0,1,2) or B (1,2,5), not tagged (2), subscribed (id%20 != 0).
    return sum(1 for i in range(1, supporters + 1) if i % 10 in (0, 1, 5) and i % 20 != 0)


if __name__ == "__main__":
    main()
