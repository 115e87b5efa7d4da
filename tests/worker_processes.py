"""Start real `clarion worker` processes (and a private Redis) for integration tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

CLARION = str(Path(sys.executable).parent / "clarion")


def worker_env(settings, database_url: str, smtp_url: str, **extra) -> dict:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=settings.redis_url,
        QUEUE_PREFIX=settings.queue_prefix,
        SECRET_KEYS=",".join(settings.secret_keys),
        BASE_URL=settings.base_url,
        MAIL_FROM=settings.mail_from,
        SMTP_URL=smtp_url,
        SEND_LEASE_SECONDS="4",
        CLOCK_INTERVAL_SECONDS="1",
        SEND_BATCH_SIZE="100",
        IMPORT_DIR=str(settings.import_dir),
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


class WorkerProcess:
    def __init__(self, env: dict, log_path: Path):
        self.log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        # Its own process group: RQ's scheduler runs in a child process, which must go too.
        self.process = subprocess.Popen(
            [CLARION, "worker"],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    killed = False

    def kill(self) -> None:
        """SIGKILL the worker and its scheduler child, as a crashed machine or OOM kill would."""
        self.killed = True
        self._kill_group()
        self.process.wait(timeout=10)

    def _kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._kill_group()  # whatever the worker left behind
        self.log.close()


class PrivateRedis:
    """A redis-server of our own on a free port, so a test may kill and restart it."""

    def __init__(self, port: int, workdir: Path):
        self.port = port
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)


def wait_until(
    predicate, timeout: float, interval: float = 0.2, message: str = "condition", workers=()
):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for worker in workers:
            if worker.process.poll() is not None and not worker.killed:
                raise AssertionError(f"worker exited early with {worker.process.returncode}")
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")
