"""Sending throughput, side by side in one run against the same Postfix smtp-sink:

1. the ceiling: one of Clarion's messages, pre-built, pushed over 2 SMTP connections;
2. Clarion end to end: "send" on a 20,000-recipient mailing to the last delivery recorded
   `sent`, with 2 `clarion worker` processes;
3. with --dkim, the same send with DKIM off and on (RSA-2048 + Ed25519, mailers/dkim.py), twice
   each, interleaved: the ratio of the best rates (target >= 0.85) and the workers' CPU per
   message, which a busy machine does not blur;
4. the audience snapshot of a 1,000,000-recipient mailing.

Usage: python bench/bench_send.py [--recipients 20000] [--snapshot 1000000] [--profile] [--dkim]
                                  [--quick]   (or BENCH_QUICK=1: 500 recipients, seconds)
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import smtplib
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import psycopg
from sqlalchemy import func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import create_app  # noqa: E402
from app.config import Settings  # noqa: E402

# `make bench-smoke` sets a suffix and its own Redis db so it never meets a full run or pytest.
DB_NAME = "clarion_bench_send" + os.environ.get("BENCH_DB_SUFFIX", "")
PG_ADMIN = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DATABASE_URL = PG_ADMIN.rsplit("/", 1)[0] + f"/{DB_NAME}"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
CLARION = str(Path(sys.executable).parent / "clarion")
QUICK = {"recipients": 500, "snapshot": 2_000}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_sink(port: int) -> subprocess.Popen:
    binary = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    sink = subprocess.Popen(
        [binary, "-u", "postfix", f"127.0.0.1:{port}", "1000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return sink
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("smtp-sink did not start (is Debian's postfix installed?)")


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


def fresh_database(settings: Settings):
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
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


def run_end_to_end(
    app, settings: Settings, list_id: int, sink_port: int, workers: int
) -> tuple[float, int]:
    elapsed, sent, _ = timed_send(app, settings, list_id, sink_port, workers)
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


def cpu_seconds(procs: list[subprocess.Popen]) -> float:
    """User + system CPU the processes have used so far (Linux /proc)."""
    total = 0
    for proc in procs:
        with open(f"/proc/{proc.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def compare_dkim(app, settings: Settings, list_id: int, sink_port: int) -> list[str]:
    """Send with DKIM off and on, interleaved twice each; return the report lines."""
    signing = dkim_environment()
    runs: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for dkim_on in (False, True, False, True):
        elapsed, sent, cpu = timed_send(
            app, settings, list_id, sink_port, 2, signing if dkim_on else None
        )
        runs[dkim_on].append((sent / elapsed, cpu / sent * 1e3))
    (off_rate, off_cpu), (on_rate, on_cpu) = max(runs[False]), max(runs[True])
    return [
        f"DKIM off (2 workers, best of 2): {off_rate:8.0f} messages/s, "
        f"{off_cpu:.2f} ms worker CPU a message",
        f"DKIM on  (2 workers, best of 2): {on_rate:8.0f} messages/s, "
        f"{on_cpu:.2f} ms worker CPU a message (RSA-2048 + Ed25519)",
        f"ratio DKIM on / DKIM off:  {on_rate / off_rate:.2f} (target >= 0.85)",
    ]


def timed_send(
    app,
    settings: Settings,
    list_id: int,
    sink_port: int,
    workers: int,
    extra_env: dict[str, str] | None = None,
) -> tuple[float, int, float]:
    """Send to the list with fresh workers: seconds, messages sent, the workers' CPU seconds."""
    from app.extensions import db
    from app.mailings.delivery.launch import request_send
    from app.mailings.models import Delivery, DeliveryStatus, Mailing, MailingStatus

    env = dict(os.environ)
    env.update(
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=settings.redis_url,
        QUEUE_PREFIX=settings.queue_prefix,
        SECRET_KEYS=",".join(settings.secret_keys),
        BASE_URL=settings.base_url,
        SMTP_URL=f"smtp://127.0.0.1:{sink_port}",
        SMTP_MAX_CONNECTIONS=str(workers),
        SEND_BATCH_SIZE=str(settings.batch_size),
    )
    env.update(extra_env or {})
    procs = [
        subprocess.Popen(
            [CLARION, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(workers)
    ]
    try:
        time.sleep(3)  # let the workers start and reach BLPOP
        cpu_before = cpu_seconds(procs)
        with app.app_context():
            mailing = make_draft(db, list_id, "bench end to end")
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
            sent = db.session.scalar(
                select(func.count()).where(
                    Delivery.mailing_id == mailing_id, Delivery.status == DeliveryStatus.SENT
                )
            )
        return elapsed, sent, cpu
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--snapshot", type=int, default=1_000_000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--dkim", action="store_true", help="also compare DKIM off and on")
    parser.add_argument("--batch-size", type=int, default=Settings.batch_size)
    parser.add_argument("--quick", action="store_true", help="small sizes (also BENCH_QUICK=1)")
    args = parser.parse_args()
    if args.quick or os.environ.get("BENCH_QUICK") == "1":
        parser.set_defaults(**QUICK)  # explicit options still win
        args = parser.parse_args()

    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    settings = replace(
        Settings.from_env({"DATABASE_URL": DATABASE_URL}),
        redis_url=REDIS_URL,
        queue_prefix="clarion-bench",
        base_url="https://act.example.org",
        secret_keys=("bench-secret-key-0123456789abcdef-0123456789",),
        batch_size=args.batch_size,
    )
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
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


if __name__ == "__main__":
    main()
