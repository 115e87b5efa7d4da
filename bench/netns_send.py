"""Workers on other "hosts": a send whose `clarion worker`s each run in a network namespace of
their own (bench/netns_hosts.sh), with their own hostname, reaching this machine's PostgreSQL,
Redis and smtp-sink only over a veth pair, never over loopback. Every recipient must get
exactly one message, as the sink counts them and as the database records them.

The yardstick, in the same run: the same send with the workers on this machine over loopback.

Usage (root): python bench/netns_send.py [--recipients 100000] [--workers 2]
                                         [--quick]   (or BENCH_QUICK=1: 2,000 recipients)
Its database is clarion_bench_send_netns; Redis is BENCH_REDIS_URL as for bench_send.py.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_send import (  # noqa: E402
    DB_SUFFIX,
    CountingSink,
    Tally,
    add_supporters,
    bench_settings,
    database_url,
    drop_database,
    fresh_database,
    jobs_in_log,
    mailing_state,
    make_draft,
    monitor_connection,
    rq_workers,
    start_workers,
    stop_workers,
    tally,
    with_host,
    worker_environment,
)

HOSTS = Path(__file__).resolve().parent / "netns_hosts.sh"
HOST_ADDR = "198.18.0.1"  # this machine on the namespaces' bridge (netns_hosts.sh)
PROBE = """
import socket, sys
for host, port in [(h, int(p)) for h, p in (a.rsplit(":", 1) for a in sys.argv[1:])]:
    try:
        socket.create_connection((host, port), timeout=2).close()
        print(f"{host}:{port} open")
    except OSError as exc:
        print(f"{host}:{port} closed ({exc.strerror or exc})")
"""


def namespace(n: int) -> str:
    return f"clarion-w{n + 1}"


def launcher(n: int) -> list[str]:
    """Run a command in namespace n, under a hostname of its own (a UTS namespace)."""
    name = namespace(n)
    return ["ip", "netns", "exec", name, "unshare", "--uts", "--", "sh", "-c",
            'hostname "$0" && exec "$@"', name]  # fmt: skip


def probe(n: int, addresses: list[str]) -> dict[str, bool]:
    """Which of host:port the namespace can connect to."""
    out = subprocess.run(
        ["ip", "netns", "exec", namespace(n), sys.executable, "-c", PROBE, *addresses],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    return {line.split()[0]: line.split()[1] == "open" for line in out if line}


def send(app, settings, list_id: int, env: dict, launchers: list, sink, expected: int):
    """Send to the list with one worker per launcher: (seconds, Tally, jobs per worker, names)."""
    from app.extensions import db
    from app.mailings.delivery.launch import request_send

    procs = []
    monitor = monitor_connection(settings)
    log_dir = Path(tempfile.mkdtemp(prefix="clarion-bench-netns-"))
    try:
        procs = start_workers(env, launchers, settings.redis_url, log_dir)
        with app.app_context():
            mailing = make_draft(db, list_id, f"bench netns, {len(launchers)} workers")
            mailing_id = mailing.id
            started = time.perf_counter()
            request_send(mailing, settings)
            db.session.commit()
        deadline = time.monotonic() + max(600, expected / 100)
        while mailing_state(monitor, mailing_id)[0] != "sent":
            if time.monotonic() > deadline:
                raise RuntimeError("the send did not finish in time")
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        workers = rq_workers(procs, settings.redis_url)
        names = [workers[proc.pid].name if proc.pid in workers else "?" for proc in procs]
    finally:
        stop_workers(procs)
        accepted = sink.stop()
    jobs = [jobs_in_log(log_dir, n) for n in range(1, len(launchers) + 1)]
    counted: Tally = tally(monitor, mailing_id, expected, accepted)
    monitor.close()
    return elapsed, counted, jobs, names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="small sizes (also BENCH_QUICK=1)")
    args = parser.parse_args()
    if args.quick or os.environ.get("BENCH_QUICK") == "1":
        parser.set_defaults(recipients=2_000)
        args = parser.parse_args()
    if os.geteuid() != 0:
        print("netns_send: needs root (ip netns); not run", file=sys.stderr)
        return 2
    # A plain SIGTERM would skip the `finally`s that stop the workers and remove the namespaces.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    db_name = "clarion_bench_send_netns" + DB_SUFFIX
    settings = bench_settings(db_name)
    redis.Redis.from_url(settings.redis_url).flushdb()
    app = fresh_database(settings)
    from app.extensions import db

    with app.app_context():
        list_id = add_supporters(db, "netns audience", args.recipients, offset=0)

    pg_port = urlsplit(database_url(db_name)).port or 5432
    redis_port = urlsplit(settings.redis_url).port or 6379
    forwarded = dict(os.environ, BENCH_PG_PORT=str(pg_port), BENCH_REDIS_PORT=str(redis_port))
    subprocess.run([HOSTS, "up", str(args.workers)], check=True, env=forwarded)
    sink = None
    try:
        sink = CountingSink(host=HOST_ADDR)
        # What a worker's "host" can reach: the services on the veth address, not loopback.
        wanted = [f"{HOST_ADDR}:{p}" for p in (pg_port, redis_port, sink.port)]
        local = [f"127.0.0.1:{p}" for p in (pg_port, redis_port, sink.port)]
        reach = {n: probe(n, wanted + local) for n in range(args.workers)}
        isolated = all(
            all(seen[a] for a in wanted) and not any(seen[a] for a in local)
            for seen in reach.values()
        )
        env = worker_environment(
            settings,
            sink.smtp_url,
            args.workers,
            database=database_url(db_name, host=HOST_ADDR),
            extra={"REDIS_URL": with_host(settings.redis_url, HOST_ADDR)},
        )
        launchers = [launcher(n) for n in range(args.workers)]
        netns = send(app, settings, list_id, env, launchers, sink, args.recipients)
    finally:
        if sink is not None:
            sink.stop()
        subprocess.run([HOSTS, "down"], check=False)

    loop_sink = CountingSink()
    env = worker_environment(settings, loop_sink.smtp_url, args.workers)
    loopback = send(app, settings, list_id, env, [[]] * args.workers, loop_sink, args.recipients)
    drop_database(settings)

    elapsed, counted, jobs, names = netns
    print(
        f"== {args.workers} workers in network namespaces, {args.recipients:,} recipients "
        f"({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}: shared machine)"
    )
    for n, seen in reach.items():
        view = ", ".join(f"{a} {'open' if ok else 'closed'}" for a, ok in seen.items())
        print(f"  {namespace(n)} reaches: {view}")
    print(f"  workers (RQ names, hostnames of their own): {', '.join(names)}")
    print(f"  jobs run per worker: {jobs}")
    print(f"  {counted.sent / elapsed:,.0f} msg/s ({counted.sent:,} sent in {elapsed:.1f} s)")
    print(f"  {counted.line()}")
    loop_elapsed, loop_counted, _, _ = loopback
    loop_rate = loop_counted.sent / loop_elapsed
    print(
        f"yardstick, the same send with the workers on loopback: {loop_rate:,.0f} msg/s "
        f"({loop_counted.line()})"
    )
    print(f"ratio namespaces / loopback: {counted.sent / elapsed / loop_rate:.2f}")
    ok = isolated and counted.exact and loop_counted.exact and all(jobs)
    print(
        "namespace run: "
        + ("PASS" if ok else "FAIL")
        + " (isolated from loopback, every recipient exactly once, every worker sent)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
