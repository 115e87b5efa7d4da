"""Sending throughput, side by side in one run against the same Postfix smtp-sink:

1. the ceiling: one of Clarion's messages, pre-built, pushed over 2 SMTP connections;
2. Clarion end to end: "send" on a 20,000-recipient mailing to the last delivery recorded
   `sent`, with 2 `clarion worker` processes;
3. with --dkim, the same send with DKIM off and on (RSA-2048 + Ed25519, mailers/dkim.py), twice
   each, interleaved: the ratio of the best rates (target >= 0.85) and the workers' CPU per
   message, which a busy machine does not blur;
4. the audience snapshot of a 1,000,000-recipient mailing.

With --million, instead: a 1,000,000-recipient send (--million-recipients) from "send"
(request_send and the START job) to the last row `sent`, with 2 and then 4 workers
(--worker-counts), each right after the raw SMTP ceiling over as many connections; the
snapshot, ANALYZE, fan-out and sending phases timed apart; the peak memory (VmHWM) and the CPU
of every process per phase; and a check that every recipient got exactly one message (the
sink's own count and the database). Its database is clarion_bench_send_million.

bench/netns_send.py runs the workers in network namespaces with the helpers below.

Usage: python bench/bench_send.py [--recipients 20000] [--snapshot 1000000] [--profile] [--dkim]
                                  [--quick]   (or BENCH_QUICK=1: 500 recipients, seconds)
       python bench/bench_send.py --million [--million-recipients 1000000]
                                  [--worker-counts 2,4] [--ceiling-messages 200000]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis
from rq import Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.serializers import JSONSerializer
from sqlalchemy import func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import create_app  # noqa: E402
from app.config import Settings  # noqa: E402
from app.jobs import SEND_BATCH, START_MAILING  # noqa: E402
from bench.machine import machine_busy_seconds  # noqa: E402

# `make bench-smoke` sets a suffix and its own Redis db so it never meets a full run or pytest.
DB_SUFFIX = os.environ.get("BENCH_DB_SUFFIX", "")
PG_ADMIN = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
CLARION = str(Path(sys.executable).parent / "clarion")
QUICK = {
    "recipients": 500,
    "snapshot": 2_000,
    "million_recipients": 5_000,
    "ceiling_messages": 2_000,
}
SECRET = "bench-secret-key-0123456789abcdef-0123456789"


def database_url(name: str, host: str | None = None) -> str:
    """The URL of database `name` on the bench's server, reached at `host` if given."""
    parts = urlsplit(PG_ADMIN)
    netloc = parts.netloc
    if host is not None:
        user = netloc.rsplit("@", 1)[0] + "@" if "@" in netloc else ""
        netloc = f"{user}{host}:{parts.port or 5432}"
    return urlunsplit(parts._replace(netloc=netloc, path=f"/{name}"))


def with_host(url: str, host: str) -> str:
    """`url` (redis://, smtp://) with its host replaced, keeping port and path."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{host}:{parts.port}" if parts.port else host))


def bench_settings(db_name: str, batch_size: int = Settings.batch_size) -> Settings:
    return replace(
        Settings.from_env({"DATABASE_URL": database_url(db_name)}),
        redis_url=REDIS_URL,
        queue_prefix="clarion-bench",
        base_url="https://act.example.org",
        secret_keys=(SECRET,),
        batch_size=batch_size,
    )


# --- Processes: CPU and peak memory from Linux /proc ------------------------------------------


def cpu_of(pid: int) -> float | None:
    """User + system CPU seconds of a process (all its threads), None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def cpu_seconds(procs: list[subprocess.Popen]) -> float:
    """User + system CPU the processes have used so far."""
    return sum(cpu_of(proc.pid) or 0.0 for proc in procs)


def peak_rss_kib(pid: int) -> int | None:
    """The process's peak resident memory (VmHWM), None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def reset_peak_rss() -> None:
    # Linux resets VmHWM to the current RSS on "5": each send's figure is its own.
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")


def descendants(pid: int) -> list[int]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as children:
                found += [int(child) for child in children.read().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []
    return found + [grandchild for child in found for grandchild in descendants(child)]


def command_of(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError):
        return "?"


# --- The SMTP sink and the raw ceiling ----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_sink(port: int, host: str = "127.0.0.1", counter=subprocess.DEVNULL) -> subprocess.Popen:
    binary = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    # -c: a running "sess=… quit=… mesg=N" counter on stdout, the sink's own message count.
    options = ["-c"] if counter is not subprocess.DEVNULL else []
    sink = subprocess.Popen(
        [binary, *options, "-u", "postfix", f"{host}:{port}", "1000"],
        stdout=counter,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return sink
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("smtp-sink did not start (is Debian's postfix installed?)")


class CountingSink:
    """A fresh smtp-sink that counts what it accepts: one per measured send, so the count is
    that send's alone. Exactly once = the sink took as many messages as the database says
    were sent, and every recipient's row is sent (each `sent` row was accepted at least once).
    """

    def __init__(self, host: str = "127.0.0.1"):
        self.host = host
        self.port = free_port()
        self.smtp_url = f"smtp://{host}:{self.port}"
        self._counter = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop(); ~25 B/message
        self.proc = start_sink(self.port, host, self._counter)
        self.peak_kib: int | None = None
        self.accepted: int | None = None

    def stop(self) -> int:
        """Stop the sink (if running); return how many messages it accepted."""
        if self.proc.poll() is None:
            self.peak_kib = peak_rss_kib(self.proc.pid)
            self.proc.terminate()
            self.proc.wait(timeout=30)
        if self.accepted is None:
            self._counter.seek(max(0, self._counter.seek(0, os.SEEK_END) - 200))
            last = self._counter.read().decode().replace("\r", "\n").split()
            self._counter.close()
            counts = [int(word[5:]) for word in last if word.startswith("mesg=")]
            self.accepted = counts[-1] if counts else 0
        return self.accepted


def _push(port: int, data: bytes, count: int) -> None:
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for n in range(count):
            smtp.sendmail("alerts@clarion.test", [f"r{n}@example.org"], data)


def measure_ceiling(port: int, data: bytes, total: int, connections: int = 2) -> float:
    per = total // connections
    procs = [
        multiprocessing.Process(target=_push, args=(port, data, per)) for _ in range(connections)
    ]
    started = time.perf_counter()
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    return per * connections / (time.perf_counter() - started)


# --- Data --------------------------------------------------------------------------------------


def _db_name(settings: Settings) -> str:
    return settings.database_url.rsplit("/", 1)[1]


def drop_database(settings: Settings) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{_db_name(settings)}" WITH (FORCE)')


def fresh_database(settings: Settings):
    drop_database(settings)
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{_db_name(settings)}"')
    app = create_app(settings)
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
    return app


def add_supporters(db, list_name: str, count: int, offset: int) -> int:
    """Insert `count` subscribed supporters in a new list with SQL, return the list id."""
    list_id = db.session.execute(
        text("INSERT INTO lists (name, created_at) VALUES (:n, now()) RETURNING id"),
        {"n": list_name},
    ).scalar_one()
    db.session.execute(
        text(
            """
            INSERT INTO supporters (email, first_name, last_name, custom_fields, status,
                                    soft_bounce_count, created_at, updated_at)
            SELECT 'person' || g || '@example.org', 'Name' || g, 'Tester',
                   '{"town": "Springfield"}'::jsonb, 'subscribed', 0, now(), now()
            FROM generate_series(CAST(:start AS bigint), CAST(:stop AS bigint)) AS g
            """
        ),
        {"start": offset, "stop": offset + count - 1},
    )
    db.session.execute(
        text(
            """
            INSERT INTO list_memberships (list_id, supporter_id, created_at)
            SELECT :list_id, id, now() FROM supporters
            WHERE email LIKE 'person%' AND id > (SELECT coalesce(max(supporter_id), 0)
                                              FROM list_memberships)
            """
        ),
        {"list_id": list_id},
    )
    db.session.commit()
    db.session.execute(text("ANALYZE"))
    db.session.commit()
    return list_id


def make_draft(db, list_id: int, name: str):
    from app.mailings.models import Mailing

    mailing = Mailing(
        name=name,
        subject="{{ first_name | default('Friend') }}, 28 children could be deported",
        layout="demo_28_children",
        from_name="Clarion Alerts",
        from_email="alerts@clarion.test",
        audience={"include_lists": [list_id]},
    )
    db.session.add(mailing)
    db.session.commit()
    return mailing


def sample_message(settings: Settings, mailing, db) -> bytes:
    from app.links.tokens import TokenService
    from app.mailings.compose.recipients import build_factory
    from app.mailings.compose.rendering import Mode, Person, frozen_of, recipient_in
    from app.mailings.delivery.launch import freeze_mailing
    from app.supporters.models import Supporter

    freeze_mailing(mailing, settings)
    db.session.flush()
    supporter = db.session.scalars(select(Supporter).limit(1)).one()
    factory = build_factory(mailing, settings, frozen_of(mailing))
    tokens = TokenService(settings.secret_keys)
    person = Person.of(supporter)
    data = factory.build(recipient_in(Mode.SEND, mailing.id, person, settings, tokens)).data
    db.session.rollback()
    return data


# --- Workers -------------------------------------------------------------------------------------


def worker_environment(
    settings: Settings,
    smtp_url: str,
    connections: int,
    *,
    database: str | None = None,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a `clarion worker` for this bench: its only configuration."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database or settings.database_url,
        REDIS_URL=settings.redis_url,
        QUEUE_PREFIX=settings.queue_prefix,
        SECRET_KEYS=",".join(settings.secret_keys),
        BASE_URL=settings.base_url,
        SMTP_URL=smtp_url,
        SMTP_MAX_CONNECTIONS=str(connections),
        SEND_BATCH_SIZE=str(settings.batch_size),
    )
    env.update(extra or {})
    return env


def start_workers(
    env: dict[str, str],
    launchers: list[list[str]],
    redis_url: str,
    log_dir: Path | None = None,
) -> list[subprocess.Popen]:
    """Start one `clarion worker` per launcher prefix ([] runs it here) and wait until each is
    registered with RQ, i.e. about to wait on the queues. Each launcher must exec the worker so
    that its pid is the worker's (`ip netns exec` does). With `log_dir`, worker N's output goes
    to log_dir/worker-N.log."""
    procs = []
    for n, launcher in enumerate(launchers, 1):
        log = subprocess.DEVNULL
        if log_dir is not None:
            log = open(log_dir / f"worker-{n}.log", "ab")  # noqa: SIM115 - the worker's now
        procs.append(
            subprocess.Popen([*launcher, CLARION, "worker"], env=env, stdout=log, stderr=log)
        )
        if log is not subprocess.DEVNULL:
            log.close()
    try:
        deadline = time.monotonic() + 120
        while len(rq_workers(procs, redis_url)) < len(procs):
            if any(proc.poll() is not None for proc in procs):
                raise RuntimeError("a clarion worker exited at start")
            if time.monotonic() > deadline:
                raise RuntimeError("the clarion workers did not register with RQ in 2 minutes")
            time.sleep(0.2)
    except BaseException:
        stop_workers(procs)
        raise
    return procs


def rq_workers(procs: list[subprocess.Popen], redis_url: str) -> dict[int, Worker]:
    """RQ's record of each of these worker processes, by pid (its name carries the pid)."""
    connection = redis.Redis.from_url(redis_url)
    pids = {proc.pid for proc in procs}
    found = {}
    for worker in Worker.all(connection=connection):
        # Named clarion-<hostname>-<pid>-<start time> by workers/cli.py.
        pid = worker.name.rsplit("-", 2)[-2]
        if pid.isdigit() and int(pid) in pids:
            found[int(pid)] = worker
    return found


def jobs_in_log(log_dir: Path, n: int) -> int:
    """Jobs worker n (from 1) logged as done. Its log, not RQ's counter in the worker's hash:
    that one starts again from 0 whenever Redis loses the hash and the worker re-registers."""
    with open(log_dir / f"worker-{n}.log", errors="replace") as log:
        return sum(": Job OK (" in line for line in log)


def requeues_in_logs(log_dir: Path) -> list[int]:
    """The batch counts the workers' clocks logged as re-enqueued, one entry per sweep that did."""
    found = []
    for path in sorted(log_dir.glob("worker-*.log")):
        with open(path, errors="replace") as log:
            for line in log:
                if "stalled batches" in line and "re-enqueueing" in line:
                    found.append(int(line.split("re-enqueueing ")[1].split()[0]))
    return found


def stop_workers(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()  # RQ's warm shutdown: finishes the job at hand
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- The default end-to-end send and DKIM -------------------------------------------------------


def run_end_to_end(
    app, settings: Settings, list_id: int, sink_port: int, workers: int
) -> tuple[float, int]:
    elapsed, sent, _, _ = timed_send(app, settings, list_id, sink_port, workers)
    return elapsed, sent


def dkim_environment() -> dict[str, str]:
    """DKIM settings for the workers: fresh RSA-2048 and Ed25519 keys (nothing verifies here)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    def pem(key) -> str:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    return {
        "DKIM_SELECTOR": "bench2026",
        "DKIM_DOMAIN": "clarion.test",
        "DKIM_PRIVATE_KEY": pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "DKIM_ED25519_SELECTOR": "bench2026ed",
        "DKIM_ED25519_PRIVATE_KEY": pem(ed25519.Ed25519PrivateKey.generate()),
    }


def compare_dkim(app, settings: Settings, list_id: int, sink_port: int) -> list[str]:
    """Send with DKIM off, RSA only and RSA + Ed25519, interleaved twice; the report lines.

    With every core busy a send's rate is the machine's CPU over the CPU a message costs, so
    the ratio cannot beat (machine CPU a message off) / (the same on): printed as its bound.
    """
    both = dkim_environment()
    rsa_only = {k: v for k, v in both.items() if "ED25519" not in k}
    modes = {"off": None, "RSA-2048": rsa_only, "RSA-2048 + Ed25519": both}
    runs: dict[str, list[tuple[float, float, float]]] = {mode: [] for mode in modes}
    for _ in range(2):
        for mode, signing in modes.items():
            elapsed, sent, cpu, busy = timed_send(app, settings, list_id, sink_port, 2, signing)
            runs[mode].append((sent / elapsed, cpu / sent * 1e3, busy / sent * 1e3))
    best = {mode: max(figures) for mode, figures in runs.items()}
    off_rate, _, off_busy = best["off"]
    lines = []
    for mode, (rate, cpu, busy) in best.items():
        line = (
            f"DKIM {mode:<19} (2 workers, best of 2): {rate:6.0f} messages/s, {cpu:.3f} ms "
            f"worker CPU and {busy:.3f} ms machine CPU a message"
        )
        if mode != "off":
            line += (
                f"; ratio to off {rate / off_rate:.2f} (target >= 0.85), "
                f"bound while CPU-bound {off_busy / busy:.2f}"
            )
        lines.append(line)
    return lines


def timed_send(
    app,
    settings: Settings,
    list_id: int,
    sink_port: int,
    workers: int,
    extra_env: dict[str, str] | None = None,
) -> tuple[float, int, float, float]:
    """Send to the list with fresh workers: seconds, messages sent, the workers' CPU seconds
    and the whole machine's busy CPU seconds (workers, sink, PostgreSQL, Redis, this process)."""
    from app.extensions import db
    from app.mailings.delivery.launch import request_send
    from app.mailings.models import Delivery, DeliveryStatus, Mailing, MailingStatus

    env = worker_environment(settings, f"smtp://127.0.0.1:{sink_port}", workers, extra=extra_env)
    procs = start_workers(env, [[]] * workers, settings.redis_url)
    try:
        with app.app_context():
            mailing = make_draft(db, list_id, "bench end to end")
            cpu_before, busy_before = cpu_seconds(procs), machine_busy_seconds()
            started = time.perf_counter()
            request_send(mailing, settings)
            db.session.commit()
            mailing_id = mailing.id
            while True:
                db.session.rollback()
                status = db.session.scalar(select(Mailing.status).where(Mailing.id == mailing_id))
                if status == MailingStatus.SENT:
                    break
                if time.perf_counter() - started > 600:
                    raise RuntimeError("end-to-end send did not finish in 10 minutes")
                time.sleep(0.05)
            elapsed = time.perf_counter() - started
            cpu = cpu_seconds(procs) - cpu_before
            busy = machine_busy_seconds() - busy_before
            sent = db.session.scalar(
                select(func.count()).where(
                    Delivery.mailing_id == mailing_id, Delivery.status == DeliveryStatus.SENT
                )
            )
        return elapsed, sent, cpu, busy
    finally:
        stop_workers(procs)


def run_snapshot(app, settings: Settings, count: int) -> float:
    from app.extensions import db
    from app.mailings.delivery.launch import snapshot_audience

    with app.app_context():
        list_id = add_supporters(db, "snapshot audience", count, offset=10_000_000)
        mailing = make_draft(db, list_id, "bench snapshot")
        started = time.perf_counter()
        total = snapshot_audience(mailing, settings.batch_size)
        db.session.commit()
        elapsed = time.perf_counter() - started
        assert total == count, (total, count)
        return elapsed


def profile_send(app, settings: Settings, list_id: int, sink_port: int) -> None:
    from pyinstrument import Profiler

    from app.extensions import db
    from app.mailings.delivery.launch import request_send, start_mailing
    from app.mailings.delivery.sending import send_batch

    settings = replace(settings, smtp_url=f"smtp://127.0.0.1:{sink_port}", batch_size=2000)
    with app.app_context():
        mailing = make_draft(db, list_id, "bench profile")
        request_send(mailing, settings)
        db.session.commit()
        start_mailing(mailing.id, settings)
        profiler = Profiler()
        profiler.start()
        send_batch(mailing.id, 0, settings)
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False, show_all=False))


# --- Exactly once ------------------------------------------------------------------------------


@dataclass
class Tally:
    """What the database and the sink say about one mailing's recipients."""

    expected: int
    rows: int
    sent: int
    people: int
    message_ids: int
    sink: int
    first_sent: datetime | None
    last_sent: datetime | None

    @property
    def missing(self) -> int:
        return self.expected - self.people

    @property
    def duplicates(self) -> int:
        # Every `sent` row was accepted by this sink at least once; more acceptances than
        # sent rows are messages someone got twice.
        return self.sink - self.sent + (self.sent - self.people)

    @property
    def exact(self) -> bool:
        return self.missing == 0 and self.duplicates == 0 and self.rows == self.expected

    def line(self) -> str:
        return (
            f"exactly once: {'yes' if self.exact else 'NO'}: the sink accepted {self.sink:,} "
            f"messages; the database has {self.sent:,} of {self.rows:,} rows sent, to "
            f"{self.people:,} distinct supporters (of {self.expected:,}), "
            f"{self.message_ids:,} distinct Message-IDs: {self.missing:,} missing, "
            f"{self.duplicates:,} duplicates"
        )


def tally(monitor: psycopg.Connection, mailing_id: int, expected: int, sink: int) -> Tally:
    rows, sent, people, message_ids, first_sent, last_sent = monitor.execute(
        """
        SELECT count(*), count(*) FILTER (WHERE status = 'sent'),
               count(DISTINCT supporter_id) FILTER (WHERE status = 'sent'),
               count(DISTINCT message_id) FILTER (WHERE status = 'sent'),
               min(sent_at), max(sent_at)
        FROM deliveries WHERE mailing_id = %s
        """,
        (mailing_id,),
    ).fetchone()
    return Tally(expected, rows, sent, people, message_ids, sink, first_sent, last_sent)


def mailing_state(monitor: psycopg.Connection, mailing_id: int) -> tuple:
    """(status, started_at, batch_count, finished_at) as committed now."""
    return monitor.execute(
        "SELECT status, started_at, batch_count, finished_at FROM mailings WHERE id = %s",
        (mailing_id,),
    ).fetchone()


def monitor_connection(settings: Settings) -> psycopg.Connection:
    # Its own autocommit connection: every read sees what the workers have committed.
    return psycopg.connect(database_url(_db_name(settings)), autocommit=True)


# --- The million-recipient send ------------------------------------------------------------------


class ProcessWatch:
    """CPU seconds and peak memory of the processes one send runs on, sampled from /proc.

    PostgreSQL works in the backends serving this database, which the workers' pools open and
    close, so they are looked up at every sample (backends alive at the first sample count
    from there, later ones from their start). Redis is one server shared with whoever else
    uses it, and the machine line is every process's: both are upper bounds on this send.
    """

    def __init__(self, processes: dict[str, int], monitor: psycopg.Connection, redis_pid: int):
        self.processes = processes
        self.monitor = monitor
        self.redis_pid = redis_pid
        self.backend_base: dict[int, float] = {}
        self.backend_last: dict[int, float] = {}
        # label -> (largest VmHWM of its children, their command)
        self.child_peaks: dict[str, tuple[int, str]] = {}
        self.analyze_started: datetime | None = None
        self._first = True
        self.sample()

    def sample(self) -> dict[str, float]:
        """Return the CPU seconds used so far by each process or group."""
        cpu = {label: cpu_of(pid) or 0.0 for label, pid in self.processes.items()}
        backends = self.monitor.execute(
            "SELECT pid, state, query, query_start FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
        for pid, state, query, query_start in backends:
            used = cpu_of(pid)
            if used is not None:
                self.backend_base.setdefault(pid, used if self._first else 0.0)
                self.backend_last[pid] = used
            # start_mailing runs it right after the snapshot commits: the snapshot's end.
            if state == "active" and query.startswith("ANALYZE deliveries"):
                self.analyze_started = self.analyze_started or query_start
        self._first = False
        cpu["PostgreSQL backends"] = sum(
            self.backend_last[pid] - self.backend_base[pid] for pid in self.backend_last
        )
        cpu["redis-server (shared)"] = cpu_of(self.redis_pid) or 0.0
        cpu["machine (everyone)"] = machine_busy_seconds()
        for label, pid in self.processes.items():
            if not label.startswith("worker"):
                continue  # the bench's children are the workers and the sink themselves
            for child in descendants(pid):
                peak = peak_rss_kib(child) or 0
                known = self.child_peaks.get(label, (0, ""))[0]
                command = command_of(child)
                if command == command_of(pid):  # what `worker.work(with_scheduler=True)` forks
                    command = "RQ's scheduler, forked by the worker"
                self.child_peaks[label] = (max(known, peak), command[:60])
        return cpu


@dataclass
class Mark:
    name: str
    at: float  # wall-clock seconds (time.time), comparable with the workers' timestamps
    cpu: dict[str, float]


@dataclass
class MillionRun:
    workers: int
    ceiling: float
    tally: Tally
    times: dict[str, float]  # event -> wall-clock seconds
    marks: list[Mark]
    peaks_kib: dict[str, int | None]
    child_peaks: dict[str, tuple[int, str]]
    jobs_per_worker: list[int]
    requeues: list[int]  # batches each sweep of the clock re-enqueued
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return self.times["last sent"] - self.times["send"]

    @property
    def rate(self) -> float:
        return self.tally.sent / self.total


def _epoch(moment: datetime) -> float:
    # RQ stores naive UTC; PostgreSQL returns aware datetimes.
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _job(job_id: str, connection) -> Job | None:
    try:
        return Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
    except NoSuchJobError:
        return None


def million_send(
    app, settings: Settings, list_id: int, workers: int, expected: int, ceiling: float
) -> MillionRun:
    """Send to the list with `workers` fresh workers, timing each phase; see the docstring."""
    from app.extensions import db
    from app.mailings.delivery.launch import request_send

    sink = CountingSink()
    connection = redis.Redis.from_url(settings.redis_url)
    procs: list[subprocess.Popen] = []
    monitor = monitor_connection(settings)
    try:
        env = worker_environment(settings, sink.smtp_url, workers)
        log_dir = Path(tempfile.mkdtemp(prefix=f"clarion-bench-send-{workers}-workers-"))
        procs = start_workers(env, [[]] * workers, settings.redis_url, log_dir)
        labels = {"bench (web: request_send)": os.getpid(), "smtp-sink": sink.proc.pid}
        labels |= {f"worker {n + 1}": proc.pid for n, proc in enumerate(procs)}
        watch = ProcessWatch(labels, monitor, int(connection.info("server")["process_id"]))
        with app.app_context():
            mailing = make_draft(db, list_id, f"bench million, {workers} workers")
            mailing_id = mailing.id
            reset_peak_rss()
            times = {"send": time.time()}
            marks = [Mark("send", times["send"], watch.sample())]
            request_send(mailing, settings)
            db.session.commit()
            times["requested"] = time.time()
        deadline = time.monotonic() + max(600, expected / 200)
        last_job_id = first_job_id = start_did_it = None
        while True:
            status, started_at, batch_count, finished_at = mailing_state(monitor, mailing_id)
            now = time.time()
            if started_at is not None and "snapshot done" not in times and batch_count:
                # batch_count is written by the snapshot's own commit (seen within 0.1 s; the
                # ANALYZE that follows it, if seen running, says when to the millisecond).
                times["started"] = _epoch(started_at)
                times["snapshot done"] = now
                marks.append(Mark("snapshot", now, watch.sample()))
                first_job_id = SEND_BATCH.job_id(mailing_id, 0, 0)
                last_job_id = SEND_BATCH.job_id(mailing_id, batch_count - 1, 0)
            if last_job_id and "fan-out done" not in times:
                last_job = _job(last_job_id, connection)
                if last_job is not None:
                    first_job = _job(first_job_id, connection)
                    times["first enqueued"] = _epoch(first_job.enqueued_at)
                    times["fan-out done"] = _epoch(last_job.enqueued_at)
                    marks.append(Mark("fan-out", now, watch.sample()))
            if start_did_it is None:
                start_job = _job(START_MAILING.job_id(mailing_id), connection)
                if start_job is not None and start_job.is_finished:
                    start_did_it = start_job.return_value()  # start_mailing's bool
            if status == "sent":
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {expected:,}-recipient send did not finish in time")
            watch.sample()  # keeps the children's peaks current
            time.sleep(0.1)
        marks.append(Mark("sent", time.time(), watch.sample()))
        if watch.analyze_started is not None:
            times["snapshot done"] = _epoch(watch.analyze_started)
        else:  # ANALYZE was over between two samples: the poll's time is all there is
            times["snapshot done"] = min(times["snapshot done"], times["first enqueued"])
        times["finished"] = _epoch(finished_at)
        notes = []
        if not start_did_it:
            notes.append(
                "a clock tick, not the START job, claimed the mailing and ran the snapshot "
                "and the fan-out (the START job waited on its row lock, then found it started)"
            )
        notes.append(f"worker logs: {log_dir}")
        peaks = {label: peak_rss_kib(pid) for label, pid in labels.items()}
    finally:
        stop_workers(procs)
        sink_count = sink.stop()
    jobs_per_worker = [jobs_in_log(log_dir, n) for n in range(1, workers + 1)]
    requeues = requeues_in_logs(log_dir)
    peaks["smtp-sink"] = sink.peak_kib
    counted = tally(monitor, mailing_id, expected, sink_count)
    monitor.close()
    times["first sent"] = _epoch(counted.first_sent)
    times["last sent"] = _epoch(counted.last_sent)
    return MillionRun(
        workers,
        ceiling,
        counted,
        times,
        marks,
        peaks,
        watch.child_peaks,
        jobs_per_worker,
        requeues,
        notes,
    )


def report_million(run: MillionRun, batch_count: int) -> list[str]:
    t = run.times
    sending = t["last sent"] - t["first enqueued"]
    lines = [
        f"{run.workers} workers: {run.tally.sent:,} sent in {run.total:.1f} s = "
        f"{run.rate:,.0f} msg/s = {run.rate / run.ceiling:.2f} x the {run.workers}-connection "
        f"ceiling ({run.ceiling:,.0f} msg/s)",
        "  phases (s): "
        f"request_send {t['requested'] - t['send']:.2f} | "
        f"START waits {t['started'] - t['requested']:.2f} | "
        f"snapshot {t['snapshot done'] - t['started']:.1f} | "
        f"ANALYZE {t['first enqueued'] - t['snapshot done']:.1f} | "
        f"fan-out of {batch_count:,} jobs {t['fan-out done'] - t['first enqueued']:.2f} | "
        f"sending+recording {sending:.1f} ({run.tally.sent / sending:,.0f} msg/s, first "
        f"sent {t['first sent'] - t['first enqueued']:.2f} s after the first job) | "
        f"marked sent {t['finished'] - t['last sent']:.2f} after the last row",
        "  " + run.tally.line(),
        f"  jobs run per worker: {run.jobs_per_worker} ({sum(run.jobs_per_worker):,}: START, "
        f"{batch_count:,} batches and {sum(run.jobs_per_worker) - batch_count - 1:,} of the "
        f"{sum(run.requeues):,} the clock's sweeps re-enqueued, {run.requeues})",
    ]
    start, snapshot, fanout, sent = run.marks
    lines.append(
        f"  {'process':<28}{'peak RSS':>10}{'CPU snapshot':>14}{'CPU rest of start':>19}"
        f"{'CPU sending':>13}{'ms/msg':>8}   (CPU: % of one core over the phase)"
    )
    cores = os.cpu_count() or 1
    for label in sent.cpu:
        peak = run.peaks_kib.get(label)
        shares = []
        for before, after in ((start, snapshot), (snapshot, fanout), (fanout, sent)):
            wall = after.at - before.at
            if wall < 0.2:  # both ends seen in the same poll or two: no figure worth printing
                shares.append("-")
                continue
            share = (after.cpu[label] - before.cpu[label]) / wall * 100
            shares.append(f"{share:.0f}%" + (f" of {cores * 100}" if "machine" in label else ""))
        memory = f"{peak / 1024:.0f} MiB" if peak else "-"
        per_message = (sent.cpu[label] - fanout.cpu[label]) / run.tally.sent * 1e3
        lines.append(
            f"  {label:<28}{memory:>10}{shares[0]:>14}{shares[1]:>19}{shares[2]:>13}"
            f"{per_message:>8.3f}"
        )
    own = own_cpu(fanout, sent) / run.tally.sent
    lines.append(
        f"  this send's own processes (not Redis): {own * 1e3:.3f} ms CPU a message while "
        f"sending: {cores / own:,.0f} msg/s if they had all {cores} cores to themselves"
    )
    lines.append("  no work-horse children: `clarion worker` is an RQ SimpleWorker")
    for label, (peak, command) in run.child_peaks.items():
        lines.append(f"  {label}'s child process: peak RSS {peak / 1024:.0f} MiB ({command})")
    return lines + [f"  note: {note}" for note in run.notes]


def own_cpu(before: Mark, after: Mark) -> float:
    """CPU seconds this send's own processes used between two marks (not shared Redis)."""
    shared = ("machine (everyone)", "redis-server (shared)")
    return sum(after.cpu[label] - before.cpu[label] for label in after.cpu if label not in shared)


def verdict(runs: list[MillionRun]) -> str:
    """Say whether more workers added throughput, and what ran out."""
    first, last = runs[0], runs[-1]
    gain = last.rate / first.rate
    _, _, fanout, sent = last.marks
    capacity = (sent.at - fanout.at) * (os.cpu_count() or 1)
    busy = (sent.cpu["machine (everyone)"] - fanout.cpu["machine (everyone)"]) / capacity
    own = own_cpu(fanout, sent) / capacity
    cores = f"this send's processes used {own:.0%} of the cores, the machine was {busy:.0%} busy"
    if busy >= 0.9:
        limit = f"the cores ran out ({cores})"
    elif last.rate >= 0.9 * last.ceiling:
        limit = f"it reached the SMTP ceiling ({last.rate / last.ceiling:.2f} x; {cores})"
    else:
        limit = (
            f"neither the cores ({cores}) nor the SMTP ceiling "
            f"({last.rate / last.ceiling:.2f} x) ran out: something serialises the send"
        )
    return (
        f"scaling {first.workers} -> {last.workers} workers: {gain:.2f} x the throughput; "
        f"while {last.workers} sent, {limit}"
    )


def measure_sweep(app, settings: Settings, list_id: int) -> tuple[float, float, int]:
    """Start a mailing here with no worker running, so all its rows stay queued and every
    batch job waits in Redis; time the clock's sweep over it (min of 3): what every
    CLOCK_INTERVAL_SECONDS costs while a mailing this size has not started sending. Returns
    (snapshot + fan-out seconds, sweep seconds, batches it re-enqueued: 0 if right)."""
    from app.extensions import db
    from app.mailings.delivery.fanout import requeue_stalled_batches
    from app.mailings.delivery.launch import request_send, start_mailing
    from app.mailings.models import Mailing

    with app.app_context():
        mailing = make_draft(db, list_id, "bench sweep")
        request_send(mailing, settings)
        db.session.commit()
        started = time.perf_counter()
        start_mailing(mailing.id, settings)
        start = time.perf_counter() - started
        sweeps, requeued = [], 0
        for _ in range(3):
            mailing = db.session.get(Mailing, mailing.id)
            started = time.perf_counter()
            requeued += requeue_stalled_batches(settings, mailing)
            db.session.commit()
            sweeps.append(time.perf_counter() - started)
    # Nothing of it may reach the sends: no rows, no jobs.
    redis.Redis.from_url(settings.redis_url).flushdb()
    return start, min(sweeps), requeued


def run_million(args) -> int:
    """The --million mode; returns the exit status (1 if any recipient was not sent exactly once)."""
    settings = bench_settings("clarion_bench_send_million" + DB_SUFFIX, args.batch_size)
    redis.Redis.from_url(settings.redis_url).flushdb()
    app = fresh_database(settings)
    from app.extensions import db

    count = args.million_recipients
    loaded = time.perf_counter()
    with app.app_context():
        list_id = add_supporters(db, "million audience", count, offset=0)
        data = sample_message(settings, make_draft(db, list_id, "bench sample"), db)
    loaded = time.perf_counter() - loaded
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    print(
        f"== {count:,}-recipient send: {os.cpu_count()} cores (nproc), load average at start "
        f"{load}; other engineers' benches and tests share this machine"
    )
    print(f"supporters loaded in {loaded:.0f} s; message size {len(data) / 1024:.1f} KiB")
    batch_count = -(-count // settings.batch_size)
    start, sweep, requeued = measure_sweep(app, settings, list_id)
    print(
        f"start_mailing alone (snapshot, ANALYZE, fan-out; no worker running): {start:.1f} s; "
        f"the clock's sweep over its {count:,} queued rows and {batch_count:,} waiting jobs: "
        f"{sweep:.2f} s a tick ({requeued} re-enqueued)"
    )
    runs = []
    for workers in args.worker_counts:
        sink = CountingSink()
        try:
            ceiling = measure_ceiling(sink.port, data, args.ceiling_messages, workers)
        finally:
            accepted = sink.stop()
        print(f"ceiling (pre-built, {workers} conns, {accepted:,} messages): {ceiling:,.0f} msg/s")
        with app.app_context():
            # Each send meets an empty deliveries table and an empty Redis, as the first did:
            # no job left over from the last send (a re-enqueued batch) runs in this one.
            db.session.execute(text("TRUNCATE deliveries CASCADE"))
            db.session.commit()
        redis.Redis.from_url(settings.redis_url).flushdb()
        run = million_send(app, settings, list_id, workers, count, ceiling)
        runs.append(run)
        for line in report_million(run, batch_count):
            print(line, flush=True)
    if len(runs) > 1:
        print(verdict(runs))
    drop_database(settings)
    return 0 if all(run.tally.exact for run in runs) else 1


# --- main ----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--snapshot", type=int, default=1_000_000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--dkim", action="store_true", help="also compare DKIM off and on")
    parser.add_argument("--batch-size", type=int, default=Settings.batch_size)
    parser.add_argument("--million", action="store_true", help="the million-recipient send")
    parser.add_argument("--million-recipients", type=int, default=1_000_000)
    parser.add_argument(
        "--worker-counts",
        type=lambda value: [int(n) for n in value.split(",")],
        default=[2, 4],
        help="workers of each --million send, comma-separated",
    )
    parser.add_argument("--ceiling-messages", type=int, default=200_000)
    parser.add_argument("--quick", action="store_true", help="small sizes (also BENCH_QUICK=1)")
    args = parser.parse_args()
    if args.quick or os.environ.get("BENCH_QUICK") == "1":
        parser.set_defaults(**QUICK)  # explicit options still win
        args = parser.parse_args()
    if args.million:
        # A plain SIGTERM would skip the `finally`s that stop the workers and the sink.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        sys.exit(run_million(args))

    redis.Redis.from_url(REDIS_URL).flushdb()
    settings = bench_settings("clarion_bench_send" + DB_SUFFIX, args.batch_size)
    app = fresh_database(settings)
    from app.extensions import db

    with app.app_context():
        list_id = add_supporters(db, "bench audience", args.recipients, offset=0)
        data = sample_message(settings, make_draft(db, list_id, "bench sample"), db)

    port = free_port()
    sink = start_sink(port)
    try:
        ceiling = measure_ceiling(port, data, args.recipients)
        elapsed, sent = run_end_to_end(app, settings, list_id, port, workers=2)
        dkim_report = compare_dkim(app, settings, list_id, port) if args.dkim else []
        if args.profile:
            profile_send(app, settings, list_id, port)
    finally:
        sink.terminate()
        sink.wait()
    clarion_rate = sent / elapsed
    print(f"message size:              {len(data) / 1024:.1f} KiB")
    print(f"ceiling (pre-built, 2 conns): {ceiling:8.0f} messages/s")
    print(
        f"Clarion end to end (2 workers): {clarion_rate:8.0f} messages/s "
        f"({sent} sent in {elapsed:.1f} s)"
    )
    print(f"ratio:                     {clarion_rate / ceiling:.0%} of the ceiling (target >= 70%)")
    for line in dkim_report:
        print(line)
    if args.snapshot:
        snap = run_snapshot(app, settings, args.snapshot)
        print(f"snapshot of {args.snapshot:,} recipients: {snap:.1f} s (target <= 20 s)")
    drop_database(settings)


if __name__ == "__main__":
    main()
