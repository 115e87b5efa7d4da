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
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from app.queues import all_queues, redis_connection
from workers import runtime

log = logging.getLogger("clarion.worker")


def run_clock(app, stop: threading.Event) -> None:
    """Sweep every CLOCK_INTERVAL_SECONDS until `stop` is set; survive any error."""
    from app.extensions import db
    from app.mailings.fanout import sweep

    settings = app.config["CLARION"]
    redis = redis_connection(settings.redis_url)
    while not stop.wait(settings.clock_interval):
        try:
            # Several workers may run a clock; one sweep per interval is enough.
            if not redis.set(
                f"{settings.queue_prefix}:clock",
                "1",
                nx=True,
                px=int(settings.clock_interval * 900),
            ):
                continue
            with app.app_context():
                try:
                    outcome = sweep(settings)
                    if any(outcome.values()):
                        log.info("sweep: %s", outcome)
                finally:
                    db.session.remove()
        except (RedisConnectionError, RedisTimeoutError) as exc:
            log.warning("clock: Redis unavailable (%s); retrying", exc)
        except Exception:
            log.exception("clock: sweep failed; retrying next interval")


@click.command("worker")
@click.option("--burst", is_flag=True, help="Exit once the queues are empty.")
@click.option("--no-clock", is_flag=True, help="Do not run the sweep clock in this process.")
def worker_command(burst: bool, no_clock: bool) -> None:
    """Run an RQ worker on Clarion's named queues (send, default, imports)."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = current_app._get_current_object()
    runtime.set_app(app)
    settings = app.config["CLARION"]
    stop = threading.Event()
    if not no_clock:
        threading.Thread(target=run_clock, args=(app, stop), name="clock", daemon=True).start()
    name = f"clarion-{socket.gethostname()}-{os.getpid()}"
    try:
        while True:
            try:
                # SimpleWorker runs jobs in this process: no fork per job, the app and its
                # connection pool are built once, and the message factory cache stays warm.
                worker = SimpleWorker(
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
