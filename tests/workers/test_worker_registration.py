"""Monitoring sees live workers: a `clarion worker` re-registers itself after Redis lost it.

A real worker process against a private redis-server that the test kills and starts again
empty (it keeps nothing on disk), as a Redis restart or failover does.
"""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
import redis
from rq import Worker
from rq.serializers import JSONSerializer

from app.queues import all_queues
from tests.smtp_sink import free_port
from tests.worker_processes import PrivateRedis, WorkerProcess, wait_until, worker_env

pytestmark = pytest.mark.integration


def _workers(connection) -> list[Worker]:
    """List the workers RQ (and `rq info`) sees, or none while Redis is starting."""
    try:
        return Worker.all(connection=connection, serializer=JSONSerializer)
    except redis.ConnectionError:
        return []


def _idle(connection) -> bool:
    workers = _workers(connection)
    if not workers or workers[0].get_state() != "idle":
        return False
    time.sleep(3)  # past the start-up maintenance, into the blocking dequeue
    return True


def test_worker_is_listed_again_after_redis_restarts(settings, test_database_url, tmp_path):
    private_redis = PrivateRedis(free_port(), tmp_path)
    private_redis.start()
    settings = replace(settings, redis_url=private_redis.url)
    connection = redis.Redis.from_url(private_redis.url)
    worker = WorkerProcess(
        worker_env(settings, test_database_url, "smtp://127.0.0.1:1"), tmp_path / "w.log"
    )
    try:
        [before] = wait_until(
            lambda: _workers(connection), 60, message="worker registered", workers=[worker]
        )
        # Idle in its blocking dequeue, where RQ retries a lost connection by itself (startup
        # errors instead end RQ's loop, and `clarion worker` starts a new, registered one).
        wait_until(lambda: _idle(connection), 30, message="worker idle", workers=[worker])
        first_run = connection.info("server")["run_id"]
        private_redis.kill()
        private_redis.start()
        # A new server process that keeps nothing on disk: everything the worker wrote is gone
        # (the worker may already be writing again, so compare the server, not its keys).
        assert connection.info("server")["run_id"] != first_run

        [after] = wait_until(
            lambda: _workers(connection), 60, message="worker re-registered", workers=[worker]
        )
        assert after.name == before.name  # the same live worker, not a new loop
        assert set(after.queue_names()) == {q.name for q in all_queues(settings)}
        assert after.birth_date == before.birth_date
        # Per-queue sets too, which `rq info` uses to show the workers of each queue.
        for queue in all_queues(settings):
            assert [w.name for w in Worker.all(queue=queue)] == [before.name]

        # The key expiring while Redis was unreachable looks the same to monitoring.
        connection.delete(after.key)
        connection.srem("rq:workers", after.key)
        [again] = wait_until(
            lambda: _workers(connection), 60, message="re-registered again", workers=[worker]
        )
        assert again.name == before.name
        assert worker.process.poll() is None
    finally:
        worker.stop()
        private_redis.kill()
