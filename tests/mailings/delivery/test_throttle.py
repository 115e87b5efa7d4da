"""The shared send rate: several processes together keep to the set rate through Redis."""

from __future__ import annotations

import multiprocessing
import time

import redis

from app.mailings.delivery.throttle import ConnectionSlots, RateLimiter


def _send_for(url: str, key: str, rate: float, seconds: float, counts) -> None:
    limiter = RateLimiter(redis.Redis.from_url(url), [(key, rate)])
    deadline = time.monotonic() + seconds
    sent = 0
    while True:
        limiter.wait_for_slot()
        if time.monotonic() >= deadline:
            break
        sent += 1
    counts.put(sent)


def test_two_processes_share_one_rate_within_ten_percent(settings, redis_conn):
    rate, seconds = 40.0, 3.0
    counts = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(
            target=_send_for, args=(settings.redis_url, "test:rate", rate, seconds, counts)
        )
        for _ in range(2)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=30)
    per_process = [counts.get(timeout=5) for _ in procs]
    total = sum(per_process)
    assert abs(total - rate * seconds) <= 0.1 * rate * seconds, per_process
    assert min(per_process) > 0.3 * total  # both got a fair share


def test_connection_slots_cap_connections_across_holders(redis_conn):
    first = ConnectionSlots(redis_conn, "test:slots", limit=1)
    second = ConnectionSlots(redis_conn, "test:slots", limit=1)
    assert first.acquire(timeout=0)
    assert not second.acquire(timeout=0.2)
    first.release()
    assert second.acquire(timeout=0)
