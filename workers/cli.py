"""`clarion worker`: an RQ worker on Clarion's queues, with the sweep clock beside it."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

import click
from flask import current_app
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import SimpleWorker, worker_registration
from rq.serializers import JSONSerializer

from app.clock import run_ticks
from app.extensions import db
from app.queues import all_queues, redis_connection, redis_key
from mailers.dkim import DkimError, DkimSigner

log = logging.getLogger("clarion.worker")


def run_clock(app, stop: threading.Event) -> None:
    """Run the clock's ticks every CLOCK_INTERVAL_SECONDS until `stop` is set; survive any error."""
    settings = app.config["CLARION"]
    redis = redis_connection(settings.redis_url)
    while not stop.wait(settings.clock_interval):
        try:
            # Several workers may run a clock; one run per interval is enough.
            if not redis.set(
                redis_key(settings, "clock"),
                "1",
                nx=True,
                px=int(settings.clock_interval * 900),
            ):
                continue
            with app.app_context():
                try:
                    outcome = run_ticks(settings)
                    if any(outcome.values()):
                        log.info("clock: %s", outcome)
                finally:
                    db.session.remove()
        except (RedisConnectionError, RedisTimeoutError) as exc:
            log.warning("clock: Redis unavailable (%s); retrying", exc)
        except Exception:
            log.exception("clock: run failed; retrying next interval")


class SelfRegisteringWorker(SimpleWorker):
    """A SimpleWorker that puts itself back on RQ's worker lists whenever Redis has lost it.

    When Redis restarts (or the worker's key expires while Redis is unreachable), RQ's dequeue
    loop reconnects and goes on running jobs, but its heartbeat only refreshes a field and the
    expiry of a key that is gone: the worker hash is left half-empty and `rq:workers` no longer
    names it, so `rq info` and dashboards show no workers. Each heartbeat of its own (the idle
    loop's, and the one after every job) therefore checks both in one round trip and registers
    the worker again, keeping its name and birth date. Heartbeats that ride in a job's pipeline
    are left alone: the next plain one comes at most a dequeue timeout later.
    """

    def heartbeat(self, timeout: int | None = None, pipeline=None):
        if pipeline is None:
            with self.connection.pipeline(transaction=False) as check:
                check.exists(self.key)
                check.sismember(worker_registration.REDIS_WORKER_KEYS, self.key)
                key_exists, listed = check.execute()
            if not (key_exists and listed):
                self.register_again()
        return super().heartbeat(timeout, pipeline)

    def register_again(self) -> None:
        """Write this worker's hash and list memberships as register_birth does, in one go."""
        log.warning("worker %s: Redis lost its registration; registering again", self.name)
        with self.connection.pipeline() as pipeline:
            pipeline.hset(self.key, mapping=self.serialize())
            worker_registration.register(self, pipeline)
            pipeline.expire(self.key, self.worker_ttl + 60)
            pipeline.execute()


@click.command("worker")
@click.option("--burst", is_flag=True, help="Exit once the queues are empty.")
@click.option("--no-clock", is_flag=True, help="Do not run the sweep clock in this process.")
def worker_command(burst: bool, no_clock: bool) -> None:
    """Run an RQ worker on Clarion's named queues (send, default, imports)."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = current_app._get_current_object()
    settings = app.config["CLARION"]
    try:
        # A DKIM key that cannot sign stops the worker now, not at its first send.
        DkimSigner.from_settings(settings)
    except DkimError as exc:
        raise click.ClickException(str(exc)) from exc
    stop = threading.Event()
    if not no_clock:
        threading.Thread(target=run_clock, args=(app, stop), name="clock", daemon=True).start()
    name = f"clarion-{socket.gethostname()}-{os.getpid()}"
    try:
        while True:
            try:
                # SimpleWorker runs jobs in this process: no fork per job, the app and its
                # connection pool are built once, and the message factory cache stays warm.
                worker = SelfRegisteringWorker(
                    all_queues(settings),
                    connection=redis_connection(settings.redis_url),
                    serializer=JSONSerializer,
                    name=f"{name}-{int(time.time())}",
                    # Abandoned jobs are re-queued sooner; the clock does not depend on it.
                    maintenance_interval=60,
                    worker_ttl=35,
                )
                worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
                if burst or worker._shutdown_requested_date is not None:  # noqa: SLF001 - SIGTERM/INT
                    return
                # RQ's loop also quits on errors it does not handle (a Redis restart can cause
                # them); the database knows what is left, so start a fresh worker and go on.
                log.warning("RQ worker loop ended without a shutdown request; restarting")
                time.sleep(1)
            except (RedisConnectionError, RedisTimeoutError) as exc:
                log.warning("Redis unavailable (%s); reconnecting in 2 s", exc)
                time.sleep(2)
    finally:
        stop.set()
