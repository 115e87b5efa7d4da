"""`clarion worker` as a process: it stops cleanly on SIGTERM (process managers rely on it)."""

from __future__ import annotations

import signal

from tests.worker_processes import WorkerProcess, wait_until, worker_env


def test_worker_stops_on_sigterm(settings, test_database_url, smtp_sink, redis_conn, tmp_path):
    log = tmp_path / "worker.log"
    worker = WorkerProcess(worker_env(settings, test_database_url, smtp_sink.url), log)
    try:
        # RQ logs "Listening on" before it starts the scheduler and installs its signal
        # handlers; its first maintenance pass ("cleaning registries") runs inside the loop,
        # after them, so a SIGTERM from then on is RQ's to handle.
        wait_until(
            lambda: b"cleaning registries" in log.read_bytes(),
            60,
            message="worker in its loop",
            workers=[worker],
        )
        worker.process.send_signal(signal.SIGTERM)
        assert worker.process.wait(timeout=20) == 0
    finally:
        worker.stop()
