"""Benchmark the supporter CSV import on PostgreSQL against a raw COPY of the same file.

    .venv/bin/python -m bench.bench_import [--rows 1000000] [--small 100000] [--keep-files]
                                           [--index-costs]
                                           [--quick]   (or BENCH_QUICK=1: 2,000 rows, seconds)

For each size it makes a CSV, recreates the scratch database `clarion_bench`, times the
yardstick twice, imports the file, imports it again (every row unchanged) and times the
yardstick twice more. The yardstick is PostgreSQL's own `COPY … FROM STDIN (FORMAT csv)` of the
same file into a table of its columns as text with a unique index on the email column: what
loading the bytes costs before any of Clarion's rules. The ratio printed is the import's time
over the mean of the four yardstick runs, which bracket the import so a change in the machine's
load shows, and over the fastest of them (the stricter figure). The CPU line splits the
machine's busy time during the import between the import's own process and the rest (the
database server): on two cores both near their sum shows the import is bound by CPU, not by
waiting.
--index-costs then times the imported rows inserted again into a bare copy of `supporters`
(and of the consent history) with no index and with each index alone: where PostgreSQL's
part of the import goes, index by index.
Each import runs in a fresh child process, so the peak RSS printed is the import's own; the
small file shows memory does not grow with the file.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import os
import random
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

import psycopg

# Run as `python bench/bench_import.py` (make bench) as well as with -m.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.machine import machine_busy_seconds  # noqa: E402

ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# `make bench-smoke` sets a suffix and its own Redis db so it never meets a full run or pytest.
DATABASE = "clarion_bench" + os.environ.get("BENCH_DB_SUFFIX", "")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
QUICK = {"rows": 2_000, "small": 0}

FIRST = [
    "Ana",
    "Ben",
    "Chloé",
    "Dara",
    "Emeka",
    "Farah",
    "Gustavo",
    "Hana",
    "Ivan",
    "Jia",
    "Kofi",
    "Lena",
    "Mateo",
    "Nadia",
    "Omar",
    "Priya",
]
LAST = [
    "Abebe",
    "Brown",
    "Chen",
    "Diallo",
    "Evans",
    "Fischer",
    "García",
    "Haddad",
    "Ivanova",
    "Jones",
    "Kim",
    "López",
    "Müller",
]
DOMAINS = ["example.org", "mail.example.com", "example.net", "posteo.example", "riseup.example"]
COUNTRIES = ["GB", "de", "FR", "us", "KE", "br", "IN", ""]
SOURCES = ["petition-2023", "march", "website", ""]
ASCII_FOLD = str.maketrans("éíóüá", "eioua")


def make_csv(path: Path, rows: int, seed: int = 1) -> None:
    """Write a supporter CSV of `rows` rows from small fixed lists (Faker is far too slow)."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("Email,First Name,Last Name,Postcode,Country,Language,Source,Member ID,Team\n")
        for i in range(rows):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            # Addresses are plain ASCII as nearly all real ones are; names need not be.
            local = f"{first}.{last}".translate(ASCII_FOLD)
            f.write(
                f"{local}.{i}@{rng.choice(DOMAINS)},{first},{last},"
                f"{rng.randint(10000, 99999)},{rng.choice(COUNTRIES)},en,"
                f"{rng.choice(SOURCES)},M{i:07d},{rng.choice(('red', 'blue', ''))}\n"
            )


def database_url() -> str:
    return ADMIN_URL.rsplit("/", 1)[0] + f"/{DATABASE}"


def settings_for(import_dir: Path):
    from app.config import Settings, normalise_database_url

    return Settings(
        database_url=normalise_database_url(database_url()),
        redis_url=REDIS_URL,
        import_dir=import_dir,
    )


def recreate_database(import_dir: Path) -> None:
    """Drop and create the scratch database and migrate it to the current schema."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    process = multiprocessing.get_context("spawn").Process(target=_migrate, args=(import_dir,))
    process.start()
    process.join()
    if process.exitcode:
        raise SystemExit("migrating the bench database failed")


def _migrate(import_dir: Path) -> None:
    from flask_migrate import upgrade

    from app import create_app

    app = create_app(settings_for(import_dir))
    with app.app_context():
        upgrade()


def _import_child(path: Path, import_dir: Path, options: dict, results) -> None:
    from app import create_app
    from app.supporters.importer import import_file

    app = create_app(settings_for(import_dir))
    with app.app_context():
        busy_before, own_before = machine_busy_seconds(), _own_cpu_seconds()
        started = time.perf_counter()
        done = import_file(path, settings=app.config["CLARION"], **options)
        seconds = time.perf_counter() - started
        own = _own_cpu_seconds() - own_before
        busy = machine_busy_seconds() - busy_before
        results.put(
            {
                "status": str(done.status),
                "error": done.error,
                "seconds": seconds,
                "rows": done.processed_rows,
                "created": done.created_count,
                "updated": done.updated_count,
                "unchanged": done.unchanged_count,
                "rejected": done.rejected_count,
                "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "cpu_import": own,
                "cpu_rest": busy - own,
            }
        )


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_import(path: Path, import_dir: Path, options: dict) -> dict:
    """Import `path` in a fresh child process and return its figures."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=_import_child, args=(path, import_dir, options, results))
    process.start()
    figures = results.get()
    process.join()
    return figures


def copy_yardstick(path: Path) -> float:
    """Time a raw COPY of `path` into a table of its columns with a unique email index."""
    with open(path, encoding="utf-8", newline="") as f:
        header = next(csv.reader(f))
    columns = [f"c{i}" for i in range(len(header))]
    email = next((f"c{i}" for i, h in enumerate(header) if h.strip().lower() == "email"), "c0")
    with psycopg.connect(database_url()) as conn:
        conn.execute("DROP TABLE IF EXISTS copy_yardstick")
        conn.execute(f"CREATE TABLE copy_yardstick ({', '.join(f'{c} text' for c in columns)})")
        conn.execute(f"CREATE UNIQUE INDEX ON copy_yardstick ({email})")
        conn.commit()
        started = time.perf_counter()
        with (
            conn.cursor() as cur,
            open(path, "rb") as f,
            cur.copy("COPY copy_yardstick FROM STDIN (FORMAT csv, HEADER)") as copy,
        ):
            while block := f.read(1024 * 1024):
                copy.write(block)
        conn.commit()
        seconds = time.perf_counter() - started
        conn.execute("DROP TABLE copy_yardstick")
        conn.commit()
    return seconds


def yardstick(path: Path, rows: int, when: str) -> float:
    seconds = copy_yardstick(path)
    print(f"{'COPY ' + f'{rows:,}':<22} {seconds:7.2f} s (yardstick, {when})", flush=True)
    return seconds


def report(label: str, figures: dict) -> None:
    rate = figures["rows"] / figures["seconds"] if figures["seconds"] else 0
    print(
        f"{label:<22} {figures['seconds']:7.2f} s {rate:10,.0f} rows/s "
        f"peak RSS {figures['max_rss_mib']:6.0f} MiB  status={figures['status']} "
        f"created={figures['created']} updated={figures['updated']} "
        f"unchanged={figures['unchanged']} rejected={figures['rejected']}",
        flush=True,
    )
    cores = os.cpu_count() or 1
    print(
        f"{'':<22} CPU {figures['cpu_import']:6.1f} s in the import's process (every thread), "
        f"{figures['cpu_rest']:6.1f} s in the rest of the machine (PostgreSQL), of "
        f"{cores * figures['seconds']:.1f} s ({cores} cores x the wall time)"
    )
    if figures["error"]:
        print(f"  error: {figures['error']}")


def index_costs() -> None:
    """Time the imported rows inserted again into a bare copy of their table, then with each of
    its indexes alone: what each index costs an import on this server (the heap, the indexes
    and the consent history are most of PostgreSQL's part). Rows go in the import's order."""
    with psycopg.connect(database_url(), autocommit=True) as conn:
        for table in ("supporters", "subscription_changes"):
            indexes = conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
                "AND tablename = %s ORDER BY indexname",
                (table,),
            ).fetchall()
            bare = _timed_insert(conn, table, [])
            print(f"insert into a copy of {table}: {bare:6.2f} s with no index", flush=True)
            for name, definition in indexes:
                print(f"  + {name:<38} {_timed_insert(conn, table, [definition]) - bare:+6.2f} s")
            every = _timed_insert(conn, table, [d for _, d in indexes])
            print(f"  with all {len(indexes)} indexes: {every:6.2f} s", flush=True)


def _timed_insert(conn, table: str, index_definitions: list[str]) -> float:
    conn.execute("DROP TABLE IF EXISTS index_cost")
    conn.execute(f"CREATE TABLE index_cost (LIKE {table} INCLUDING DEFAULTS)")
    for definition in index_definitions:
        conn.execute(re.sub(r"INDEX \S+ ON (public\.)?\S+ ", "INDEX ON index_cost ", definition))
    conn.execute("CHECKPOINT")  # each run starts with the same WAL to write
    started = time.perf_counter()
    conn.execute(f"INSERT INTO index_cost SELECT * FROM {table} ORDER BY id")
    seconds = time.perf_counter() - started
    conn.execute("DROP TABLE index_cost")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000, help="0 to skip the small file")
    parser.add_argument("--list", help="add every imported supporter to this list")
    parser.add_argument("--tag", action="append", default=[], help="and tag them (repeatable)")
    parser.add_argument("--keep-files", action="store_true")
    parser.add_argument(
        "--index-costs",
        action="store_true",
        help="then time what each index of supporters and of the consent history costs",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (also BENCH_QUICK=1)")
    args = parser.parse_args()
    if args.quick or os.environ.get("BENCH_QUICK") == "1":
        parser.set_defaults(**QUICK)  # explicit options still win
        args = parser.parse_args()
    options = {"list_name": args.list, "tag_names": args.tag}
    print(f"list={args.list!r} tags={args.tag!r}")
    sizes = sorted({n for n in (args.small, args.rows) if n > 0})
    with tempfile.TemporaryDirectory(prefix="clarion-bench-") as tmp:
        tmpdir = Path(tmp)
        for rows in sizes:
            path = tmpdir / f"supporters-{rows}.csv"
            started = time.perf_counter()
            make_csv(path, rows)
            print(
                f"{rows:,} rows: generated {path.stat().st_size / 2**20:.0f} MiB CSV in "
                f"{time.perf_counter() - started:.1f} s",
                flush=True,
            )
            recreate_database(tmpdir)
            copies = [yardstick(path, rows, "before") for _ in range(2)]
            first = run_import(path, tmpdir, options)
            report(f"import {rows:,}", first)
            again = run_import(path, tmpdir, options)
            report(f"re-import {rows:,}", again)
            copies += [yardstick(path, rows, "after") for _ in range(2)]
            mean, fastest = sum(copies) / len(copies), min(copies)
            print(
                f"{rows:,} rows: import / COPY = {first['seconds'] / mean:.2f}, "
                f"re-import / COPY = {again['seconds'] / mean:.2f} (COPY {mean:.2f} s, the mean "
                f"of all four); against the fastest COPY ({fastest:.2f} s): "
                f"{first['seconds'] / fastest:.2f} and {again['seconds'] / fastest:.2f}",
                flush=True,
            )
            if args.index_costs and rows == max(sizes):
                index_costs()
            if args.keep_files:
                kept = Path.cwd() / path.name
                path.rename(kept)
                print(f"  kept {kept}")


if __name__ == "__main__":
    main()
