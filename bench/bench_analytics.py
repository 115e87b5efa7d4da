"""Time event ingestion with rollups on against off, and one mailing's report at 1M deliveries.

Builds a scratch PostgreSQL database `clarion_bench_analytics` (dropped and re-created) and
migrates it. Then:

1. Ingestion: two mailings of --recipients deliveries each; the same stream of opens and clicks
   (people and image proxies, one recipient's clicks far apart) is drained into each through
   the real batch path (app/tracking/buffer.py apply_events, BATCH_SIZE events a batch), with
   the rollups switched off for one mailing and on for the other, batches interleaved so both
   meet the same database. Target: rate with rollups ≥ 0.7 × rate without.
2. Report: a mailing with --deliveries deliveries and about twice as many events (opens,
   clicks, actions, unsubscribes, bounces by people and machines over three days), filled with
   generate_series and counted once with `clarion stats rebuild`'s code; then min/median/p95 of
   mailing_stats (GET /api/v1/mailings/ID/stats) and of app/tracking/reports.py's
   mailing_report (GET /api/v1/mailings/ID/report and the staff results page: headline, rates,
   72 h hourly then daily, links). Target: ≤ 50 ms per report. Then the breakdowns by list,
   by tag and by a saved segment (GROUPS lists and tags over the supporters) and the time to
   stream each CSV export, which read the deliveries and so have no 50 ms target.

    .venv/bin/python bench/bench_analytics.py [--recipients N] [--deliveries N] [--runs N]
                                              [--admin-url postgresql://…/postgres]
                                              [--quick]   (or BENCH_QUICK=1: small sizes)
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import replace
from datetime import timedelta

import psycopg

from app import create_app
from app.config import Settings, normalise_database_url
from app.db import utcnow
from app.extensions import db
from app.mailings.abtest import statistics as statistics_module
from app.mailings.abtest.results import ab_results, settle_variant_outcomes
from app.mailings.models import AbTest, Mailing, MailingLink, MailingStatus
from app.supporters.models import Segment
from app.supporters.segments import count_segment
from app.tracking import breakdowns, buffer, report_csv, reports, rollups
from app.tracking.rebuild import rebuild
from app.tracking.stats import mailing_stats

# `make bench-smoke` sets a suffix and its own Redis db so it never meets a full run or pytest.
DB_NAME = "clarion_bench_analytics" + os.environ.get("BENCH_DB_SUFFIX", "")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
QUICK = {"recipients": 2_000, "deliveries": 20_000, "runs": 10}
LINKS = 3
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
PROXY = "Mozilla/5.0"  # Apple Mail Privacy Protection: a machine open
INGEST_TARGET, REPORT_TARGET_MS = 0.7, 50.0

SUPPORTERS_SQL = """
    INSERT INTO supporters (email, custom_fields, status, soft_bounce_count, created_at,
                            updated_at)
    SELECT 'bench' || g || '@example.org', '{}'::jsonb, 'subscribed', 0, now(), now()
    FROM generate_series(1, %(count)s) AS g
"""
DELIVERIES_SQL = """
    INSERT INTO deliveries (mailing_id, supporter_id, batch_no, status, attempts, sent_at)
    SELECT %(mailing_id)s, id, 0, 'sent', 1, now() - interval '3 days'
    FROM supporters ORDER BY id LIMIT %(count)s
"""
# About two events per delivery: 60 % open as people, 60 % are fetched by a proxy (a third of
# them people too), 30 % click
# one to three links (a tenth of them scanned too), 3 % act, 1 % unsubscribe, 2 % bounce and a
# few fail; spread over the three days since sending, by the delivery's id.
REPORT_FILL_SQL = [
    """
    UPDATE deliveries SET status = 'failed' WHERE mailing_id = %(m)s AND id %% 200 = 7
    """,
    """
    INSERT INTO tracking_events (kind, mailing_id, supporter_id, delivery_id, occurred_at,
                                 user_agent_class, machine, machine_reason)
    SELECT 'open'::tracking_event_kind, %(m)s, supporter_id, id,
           sent_at + (id %% 4320) * interval '1 minute', 'browser', false, NULL
    FROM deliveries WHERE mailing_id = %(m)s AND id %% 10 < 6
    UNION ALL
    SELECT 'open'::tracking_event_kind, %(m)s, supporter_id, id, sent_at + interval '2 minutes', 'apple-mpp', true,
           'apple-mpp'
    FROM deliveries WHERE mailing_id = %(m)s AND (id %% 10 >= 6 OR id %% 10 < 2)
    """,
    """
    INSERT INTO tracking_events (kind, mailing_id, supporter_id, delivery_id, link_position,
                                 occurred_at, user_agent_class, machine, machine_reason)
    SELECT 'click'::tracking_event_kind, %(m)s, d.supporter_id, d.id, p,
           d.sent_at + (d.id %% 4320) * interval '1 minute' + p * interval '5 minutes',
           'browser', false, NULL
    FROM deliveries d, generate_series(1, 3) AS p
    WHERE d.mailing_id = %(m)s AND d.id %% 10 < 3 AND p <= 1 + d.id %% 3
    UNION ALL
    SELECT 'click'::tracking_event_kind, %(m)s, d.supporter_id, d.id, p, d.sent_at + interval '3 seconds',
           'browser', true, 'too-fast'
    FROM deliveries d, generate_series(1, 3) AS p
    WHERE d.mailing_id = %(m)s AND d.id %% 100 < 6
    """,
    """
    INSERT INTO tracking_events (kind, mailing_id, supporter_id, delivery_id, occurred_at,
                                 user_agent_class, machine)
    SELECT 'action'::tracking_event_kind, %(m)s, supporter_id, id,
           sent_at + (id %% 4320) * interval '1 minute' + interval '20 minutes', 'browser', false
    FROM deliveries WHERE mailing_id = %(m)s AND id %% 100 < 3
    UNION ALL
    SELECT 'unsubscribe'::tracking_event_kind, %(m)s, supporter_id, id,
           sent_at + (id %% 4320) * interval '1 minute' + interval '1 minute', 'browser', false
    FROM deliveries WHERE mailing_id = %(m)s AND id %% 100 = 50
    """,
    """
    INSERT INTO bounce_events (kind, source, mailing_id, supporter_id, delivery_id, occurred_at)
    SELECT CASE WHEN id %% 3 = 0 THEN 'soft' ELSE 'hard' END::bounce_kind, 'smtp', %(m)s,
           supporter_id, id, sent_at
    FROM deliveries WHERE mailing_id = %(m)s AND id %% 50 = 11
    """,
]


# The report's mailing is an A/B test of two subjects: a fifth of its deliveries are the test
# portion (half A, half B), the rest got the winner; the report then also reads the variants.
AB_TEST_SQL = [
    "UPDATE mailings SET started_at = now() - interval '3 days' WHERE id = %(m)s",
    """
    INSERT INTO mailing_variants (mailing_id, position, subject)
    VALUES (%(m)s, 0, NULL), (%(m)s, 1, 'Variant B')
    """,
    """
    INSERT INTO ab_tests (mailing_id, test_fraction, wait_minutes, metric, selection,
                          breaker_min_sent, test_recipients, test_batch_count, decide_at)
    SELECT %(m)s, 0.2, 240, 'clicks', 'auto', 100, count(*) / 5, 1, now() - interval '68 hours'
    FROM deliveries WHERE mailing_id = %(m)s
    """,
    """
    UPDATE deliveries d SET variant_id = v.id
    FROM mailing_variants v
    WHERE d.mailing_id = %(m)s AND d.id %% 10 < 2
      AND v.mailing_id = %(m)s AND v.position = d.id %% 2
    """,
]


# Lists and tags over the supporters: each supporter in one or two lists and one tag.
GROUPS = 8
GROUPS_SQL = [
    """
    INSERT INTO lists (name, created_at)
    SELECT 'List ' || g, now() FROM generate_series(1, %(groups)s) AS g
    """,
    """
    INSERT INTO tags (name, created_at)
    SELECT 'tag-' || g, now() FROM generate_series(1, %(groups)s) AS g
    """,
    """
    INSERT INTO list_memberships (list_id, supporter_id, created_at)
    SELECT l.id, s.id, now()
    FROM supporters s
    JOIN lists l ON l.name = 'List ' || (1 + s.id %% %(groups)s)
    UNION ALL
    SELECT l.id, s.id, now()
    FROM supporters s
    JOIN lists l ON l.name = 'List ' || (1 + (s.id / 7) %% %(groups)s)
    WHERE s.id %% 3 = 0 AND (s.id / 7) %% %(groups)s <> s.id %% %(groups)s
    """,
    """
    INSERT INTO supporter_tags (tag_id, supporter_id)
    SELECT t.id, s.id
    FROM supporters s JOIN tags t ON t.name = 'tag-' || (1 + (s.id / 3) %% %(groups)s)
    """,
]


def build_database(admin_url: str, supporters: int):
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
        with db.engine.begin() as conn:
            conn.exec_driver_sql(SUPPORTERS_SQL, {"count": supporters})
    return app


def new_mailing(name: str, recipients: int) -> int:
    mailing = Mailing(
        name=name,
        subject=name,
        status=MailingStatus.SENT,
        links=[MailingLink(position=0, url="https://act.example.org/trap", is_honeypot=True)]
        + [
            MailingLink(position=n, url=f"https://act.example.org/{n}") for n in range(1, LINKS + 1)
        ],
    )
    db.session.add(mailing)
    db.session.commit()
    with db.engine.begin() as conn:
        conn.exec_driver_sql(DELIVERIES_SQL, {"mailing_id": mailing.id, "count": recipients})
    return mailing.id


def event_stream(mailing_id: int, supporter_ids: list[int]) -> dict[str, list[tuple]]:
    """Opens by people and proxies; clicks a link at a time, so no recipient bursts."""
    start = utcnow() - timedelta(hours=2)
    opens, clicks = [], []
    for n, supporter_id in enumerate(supporter_ids):
        agent = BROWSER if n % 10 < 6 else PROXY
        opens.append(("o", mailing_id, supporter_id, 0, agent, "GET", start))
    for link in range(1, LINKS + 1):
        for n, supporter_id in enumerate(supporter_ids):
            if n % 3 < 2:
                at = start + timedelta(seconds=link * 60 + n * 0.001)
                clicks.append(("c", mailing_id, supporter_id, link, BROWSER, "GET", at))
    return {"opens": opens, "clicks": clicks}


def drain(events: list[tuple]) -> float:
    started = time.perf_counter()
    buffer.apply_events(list(events))
    db.session.commit()
    return time.perf_counter() - started


def ingestion(recipients: int) -> float:
    """Drain the same stream with rollups off and on; return the rate ratio on/off."""
    off_id, on_id = new_mailing("Rollups off", recipients), new_mailing("Rollups on", recipients)
    with db.engine.connect() as conn:
        ids = [r[0] for r in conn.exec_driver_sql("SELECT id FROM supporters ORDER BY id")]
    ids = ids[:recipients]
    streams = {"off": event_stream(off_id, ids), "on": event_stream(on_id, ids)}
    db.session.execute(db.text("ANALYZE"))
    db.session.commit()
    apply_rollups = rollups.apply
    size = buffer.BATCH_SIZE
    seconds = {(part, mode): 0.0 for part in ("opens", "clicks") for mode in ("off", "on")}
    for part in ("opens", "clicks"):
        total = len(streams["on"][part])
        for start in range(0, total, size):
            # Alternate which goes first, so neither always meets the warmer cache.
            for mode in ("off", "on") if (start // size) % 2 == 0 else ("on", "off"):
                rollups.apply = apply_rollups if mode == "on" else (lambda *_: None)
                try:
                    seconds[part, mode] += drain(streams[mode][part][start : start + size])
                finally:
                    rollups.apply = apply_rollups
    print(f"ingestion: {recipients:,} recipients per mailing, batches of {size}")
    print(f"  {'events':<16} {'count':>8} {'off /s':>10} {'on /s':>10} {'on/off':>7}")
    for part in ("opens", "clicks", "all"):
        parts = ("opens", "clicks") if part == "all" else (part,)
        count = sum(len(streams["on"][p]) for p in parts)
        off = count / sum(seconds[p, "off"] for p in parts)
        on = count / sum(seconds[p, "on"] for p in parts)
        print(f"  {part:<16} {count:>8,} {off:>10,.0f} {on:>10,.0f} {on / off:>7.2f}")
    ratio = on / off
    print(
        f"  target: on/off >= {INGEST_TARGET} {'OK' if ratio >= INGEST_TARGET else 'BELOW TARGET'}"
    )
    stats = mailing_stats(on_id)
    print(f"  counted: opens {stats['opens']}, clicks {stats['clicks']}")
    return ratio


def timed(function, runs: int) -> tuple[float, float, float]:
    times = []
    for _ in range(runs):
        db.session.expire_all()
        started = time.perf_counter()
        function()
        times.append((time.perf_counter() - started) * 1000)
        db.session.rollback()
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return times[0], statistics.median(times), p95


def report(deliveries: int, runs: int) -> None:
    mailing_id = new_mailing("Report", deliveries)
    started = time.perf_counter()
    with db.engine.begin() as conn:
        for statement in AB_TEST_SQL + REPORT_FILL_SQL:
            conn.exec_driver_sql(statement, {"m": mailing_id})
    filled = time.perf_counter() - started
    started = time.perf_counter()
    rebuild(mailing_id)
    db.session.commit()
    rebuilt = time.perf_counter() - started
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
        events = conn.exec_driver_sql("SELECT count(*) FROM tracking_events").scalar()
    print(
        f"report: {deliveries:,} deliveries, {events:,} events "
        f"(filled in {filled:.1f}s, `stats rebuild` in {rebuilt:.1f}s)"
    )
    print(f"  {'read':<28} {'min ms':>8} {'median':>8} {'p95':>8}")
    # While the test portion sends, its recipients and sent messages are counted per request;
    # once it has finished the clock stores them (settle_variant_outcomes) and reports read that.
    low, median, p95 = timed(lambda: _ab_results_uncached(mailing_id), max(3, runs // 3))
    print(f"  {'A/B variants, test sending':<28} {low:>8.1f} {median:>8.1f} {p95:>8.1f}")
    settle_variant_outcomes(db.session.get(AbTest, mailing_id))
    db.session.commit()
    worst = 0.0
    for name, function in (
        ("mailing_stats (API)", lambda: mailing_stats(mailing_id)),
        ("mailing_report (API, staff)", lambda: reports.mailing_report(mailing_id)),
        ("A/B variants (…/ab-test)", lambda: _ab_results_uncached(mailing_id)),
    ):
        low, median, p95 = timed(function, runs)
        worst = max(worst, median)
        print(f"  {name:<28} {low:>8.1f} {median:>8.1f} {p95:>8.1f}")
    print(
        f"  target: median <= {REPORT_TARGET_MS:.0f} ms per report (the A/B test settled)"
        f" {'OK' if worst <= REPORT_TARGET_MS else 'ABOVE TARGET'}"
    )
    time_breakdowns(mailing_id, max(3, runs // 6))
    print(f"  {'behaviour segment':<40} {'members':>9} {'min ms':>8} {'median':>8} {'p95':>8}")
    behaviour_segments(max(3, runs // 10))
    stats = mailing_stats(mailing_id)
    print(f"  figures: { ({k: v for k, v in stats.items() if k != 'deliveries'}) }")
    ab = ab_results(db.session.get(Mailing, mailing_id))
    print(
        "  A/B: "
        + ", ".join(
            f"{v.label} {v.successes:,}/{v.sent:,} clicked (P best {v.probability_best:.3f})"
            for v in ab.variants
        )
        + f"; leader {ab.leader}, p = {ab.p_value if ab.p_value is None else round(ab.p_value, 6)}"
    )


# Behaviour segments over the same supporters and events (app/tracking/behaviour.py): the
# sunset list reads each supporter's events since a cutoff from ix_tracking_events_supporter_time.
BEHAVIOUR_SEGMENTS = {
    "sunset (not engaged, 12 months)": {"behaviour": [{"type": "not_engaged", "months": 12}]},
    "opened any of the last 3": {
        "behaviour": [{"type": "opened_recent_mailings", "last_mailings": 3}]
    },
}


def behaviour_segments(runs: int) -> None:
    for name, definition in BEHAVIOUR_SEGMENTS.items():
        found = count_segment(definition)
        low, median, p95 = timed(lambda definition=definition: count_segment(definition), runs)
        print(f"  {'count: ' + name:<40} {found:>9,} {low:>8.1f} {median:>8.1f} {p95:>8.1f}")


def _ab_results_uncached(mailing_id: int):
    # Live figures change with every event, so time the probabilities computed afresh.
    statistics_module._probabilities.cache_clear()
    return ab_results(db.session.get(Mailing, mailing_id))


def time_breakdowns(mailing_id: int, runs: int) -> None:
    """Time the breakdowns (one grouped query over the deliveries) and the CSV exports."""
    started = time.perf_counter()
    with db.engine.begin() as conn:
        for statement in GROUPS_SQL:
            conn.exec_driver_sql(statement, {"groups": GROUPS})
    segment = Segment(
        name="Bench segment", definition={"include_lists": [1, 2], "exclude_tags": [1]}
    )
    db.session.add(segment)
    db.session.commit()
    segment_id = segment.id
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
    print(f"  ({GROUPS} lists and tags filled in {time.perf_counter() - started:.1f}s)")
    for name, function in (
        (f"breakdown by list ({GROUPS})", lambda: breakdowns.breakdown(mailing_id, "list")),
        (f"breakdown by tag ({GROUPS})", lambda: breakdowns.breakdown(mailing_id, "tag")),
        (
            "breakdown by a segment",
            lambda: breakdowns.breakdown(mailing_id, "segment", [segment_id]),
        ),
    ):
        low, median, p95 = timed(function, runs)
        print(f"  {name:<28} {low:>8.1f} {median:>8.1f} {p95:>8.1f}")
    for table in report_csv.EXPORTS:
        low, median, p95 = timed(lambda table=table: _drain_csv(mailing_id, table), 1)
        print(f"  {table + '.csv (streamed)':<28} {median:>8.1f} ms for the whole file")


def _drain_csv(mailing_id: int, table: str) -> int:
    return sum(len(piece) for piece in report_csv.export_csv(mailing_id, table))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", default=ADMIN_URL)
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--deliveries", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="small sizes (also BENCH_QUICK=1)")
    args = parser.parse_args()
    if args.quick or os.environ.get("BENCH_QUICK") == "1":
        parser.set_defaults(**QUICK)  # explicit options still win
        args = parser.parse_args()
    started = time.perf_counter()
    app = build_database(args.admin_url, max(args.recipients, args.deliveries))
    print(f"built the database in {time.perf_counter() - started:.1f}s")
    with app.app_context():
        ingestion(args.recipients)
        report(args.deliveries, args.runs)


if __name__ == "__main__":
    main()
