"""Pin the throttle's arithmetic: GCRA reservations in real Redis, the waits, the chunking.

The Lua scripts read Redis TIME, so the Redis clock cannot be faked without changing the source.
The Python side's clock can: `time` in app/mailings/delivery/throttle.py is replaced by a fake whose
sleep only records the delay and moves a fake monotonic clock. Nothing sleeps for real, so
between two reservations only the real cost of a Redis round trip passes (well under the
tolerances below, which are a fraction of one interval and so still catch any change of
factor or offset in the arithmetic).

The tests need Redis only; under --noconftest (the mutation runner: no database to set up for
each mutant) they use the same Redis db the conftest would.
"""

from __future__ import annotations

import math
import time

import pytest
import redis

from app.mailings.delivery import throttle
from app.mailings.delivery.throttle import ConnectionSlots, RateLimiter
from tests.conftest import REDIS_BASE_URL, REDIS_DB_OFFSET

SLACK = 0.05  # real seconds that may pass between a reservation and the test's check
ROUNDING = 0.001  # Lua's tostring keeps 14 digits: 0.1 ms of a Unix time in seconds
_started = [0.0]


@pytest.fixture(autouse=True)
def _stopwatch():
    """Note when the test began: no more real time than that can pass between two checks."""
    _started[0] = time.monotonic()


def slack() -> float:
    """SLACK, or the real time the test has taken so far if more (a machine under load)."""
    return max(SLACK, time.monotonic() - _started[0] + ROUNDING)


def close(actual: float, expected: float) -> bool:
    """Return whether `actual` is `expected` less at most the real time that can have passed."""
    return expected - slack() < actual <= expected + ROUNDING


class FakeTime:
    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def redis_conn(request):
    """The conftest's per-worker Redis db, or under --noconftest the first test db."""
    try:
        conn = request.getfixturevalue("redis_conn")
    except pytest.FixtureLookupError:
        conn = redis.Redis.from_url(f"{REDIS_BASE_URL}/{REDIS_DB_OFFSET}")
        conn.flushdb()
    yield conn
    conn.flushdb()


@pytest.fixture
def clock(monkeypatch):
    fake = FakeTime()
    monkeypatch.setattr(throttle, "time", fake)
    return fake


def redis_now(redis_conn) -> float:
    seconds, micros = redis_conn.time()
    return seconds + micros / 1_000_000


def ahead(redis_conn, key: str) -> float:
    """Return how far the key's theoretical arrival time is ahead of Redis's clock."""
    return float(redis_conn.get(key)) - redis_now(redis_conn)


def test_each_message_at_a_low_rate_waits_one_more_interval(redis_conn, clock):
    limiter = RateLimiter(redis_conn, [("test:gcra:10", 10.0)])
    for _ in range(5):
        limiter.wait_for_slot()
    # The first message goes at once; the n-th waits (n - 1) intervals of 0.1 s.
    assert len(clock.sleeps) == 4
    for n, slept in enumerate(clock.sleeps, start=1):
        assert close(slept, n * 0.1), clock.sleeps
    assert close(ahead(redis_conn, "test:gcra:10"), 0.5)


def test_the_first_reservation_does_not_wait(redis_conn, clock):
    limiter = RateLimiter(redis_conn, [("test:gcra:first", 2.0)])
    limiter.wait_for_slot()
    assert clock.sleeps == []
    assert close(ahead(redis_conn, "test:gcra:first"), 0.5)


def test_reservation_key_expires_a_second_after_the_reservation_ends(redis_conn, clock):
    RateLimiter(redis_conn, [("test:gcra:ttl", 4.0)]).wait_for_slot()
    # PX = ceil(0.25 s × 1000) + 1000 ms (ceil may round float noise up by one)
    assert 1250 - slack() * 1000 < redis_conn.pttl("test:gcra:ttl") <= 1251


def test_a_reservation_in_the_past_starts_from_now(redis_conn, clock):
    redis_conn.set("test:gcra:past", str(redis_now(redis_conn) - 100))
    RateLimiter(redis_conn, [("test:gcra:past", 10.0)]).wait_for_slot()
    assert clock.sleeps == []
    assert close(ahead(redis_conn, "test:gcra:past"), 0.1)


def test_workers_share_one_reservation_key(redis_conn, clock):
    first = RateLimiter(redis_conn, [("test:gcra:shared", 5.0)])
    second = RateLimiter(redis_conn, [("test:gcra:shared", 5.0)])
    first.wait_for_slot()
    second.wait_for_slot()
    first.wait_for_slot()
    assert len(clock.sleeps) == 2
    assert close(clock.sleeps[0], 0.2)
    assert close(clock.sleeps[1], 0.4)


def test_the_slowest_of_several_limits_sets_the_wait(redis_conn, clock):
    limiter = RateLimiter(redis_conn, [("test:gcra:fast", 10.0), ("test:gcra:slow", 4.0)])
    for _ in range(3):
        limiter.wait_for_slot()
    assert len(clock.sleeps) == 2
    assert close(clock.sleeps[0], 0.25)
    assert close(clock.sleeps[1], 0.5)
    # Every limit is charged for every message.
    assert close(ahead(redis_conn, "test:gcra:fast"), 0.3)
    assert close(ahead(redis_conn, "test:gcra:slow"), 0.75)


def reservations(redis_conn, limiter: RateLimiter, key: str, messages: int) -> list[int]:
    """Return the message numbers at which the limiter went to Redis for a new reservation."""
    seen, calls = None, []
    for n in range(1, messages + 1):
        limiter.wait_for_slot()
        value = redis_conn.get(key)
        if value != seen:
            calls.append(n)
            seen = value
    return calls


@pytest.mark.parametrize(
    "rate, chunk",
    [
        (1.0, 1),
        (10.0, 1),
        (49.0, 1),  # 0.02 s covers less than two messages
        (50.0, 1),
        (100.0, 2),
        (1000.0, 20),
        (2450.0, 49),
        (10000.0, 50),  # at most 50 per round trip
        (1e6, 50),
    ],
)
def test_messages_are_reserved_in_chunks_of_20_ms_up_to_50(redis_conn, clock, rate, chunk):
    key = f"test:gcra:chunk:{rate}"
    limiter = RateLimiter(redis_conn, [(key, rate)])
    calls = reservations(redis_conn, limiter, key, 3 * chunk + 1)
    assert calls == [1, chunk + 1, 2 * chunk + 1, 3 * chunk + 1]


def test_a_chunk_waits_for_the_start_of_its_reservation(redis_conn, clock):
    limiter = RateLimiter(redis_conn, [("test:gcra:100", 100.0)])
    for _ in range(6):
        limiter.wait_for_slot()
    # Messages 1-2 go at once, 3-4 wait for 20 ms, 5-6 for 40 ms.
    assert len(clock.sleeps) == 2
    assert 0 < clock.sleeps[0] <= 0.02 + ROUNDING
    assert 0.02 < clock.sleeps[1] <= 0.04 + ROUNDING


def test_the_chunk_follows_the_fastest_limit(redis_conn, clock):
    limiter = RateLimiter(redis_conn, [("test:gcra:slowest", 1.0), ("test:gcra:fastest", 500.0)])
    # 0.02 s at 500/s is 10 messages per reservation, charged to both limits.
    start = redis_now(redis_conn)
    assert reservations(redis_conn, limiter, "test:gcra:fastest", 11) == [1, 11]
    # Each reservation charges every limit for the whole chunk: 2 × 10 messages at 1/s.
    assert close(float(redis_conn.get("test:gcra:slowest")) - start, 20 + SLACK)


@pytest.mark.parametrize(
    "limits", [[], [("test:gcra:off", 0)], [("test:gcra:off", None)], [("test:gcra:off", -5.0)]]
)
def test_no_positive_rate_means_no_limit(redis_conn, clock, limits):
    limiter = RateLimiter(redis_conn, limits)
    assert limiter.active is False
    for _ in range(100):
        limiter.wait_for_slot()
    assert clock.sleeps == []
    assert redis_conn.get("test:gcra:off") is None


def test_a_zero_rate_beside_a_real_one_is_ignored(redis_conn, clock):
    limiter = RateLimiter(redis_conn, [("test:gcra:off", 0), ("test:gcra:on", 10.0)])
    assert limiter.active is True
    limiter.wait_for_slot()
    limiter.wait_for_slot()
    assert redis_conn.get("test:gcra:off") is None
    assert len(clock.sleeps) == 1 and close(clock.sleeps[0], 0.1)


class TestConnectionSlots:
    def test_a_slot_is_leased_for_the_lease_time(self, redis_conn, clock):
        slots = ConnectionSlots(redis_conn, "test:slots:lease", limit=2, lease_seconds=30.5)
        assert slots.acquire(timeout=0) is True
        ((holder, expires),) = redis_conn.zrange("test:slots:lease", 0, -1, withscores=True)
        assert close(expires - redis_now(redis_conn), 30.5)
        # The set outlives the longest lease by a minute.
        assert (
            math.ceil(30.5) + 60 - 1 <= redis_conn.ttl("test:slots:lease") <= math.ceil(30.5) + 60
        )
        assert clock.sleeps == []

    def test_the_default_lease_is_two_minutes(self, redis_conn, clock):
        assert ConnectionSlots(redis_conn, "test:slots:default", limit=1).acquire(timeout=0)
        ((_, expires),) = redis_conn.zrange("test:slots:default", 0, -1, withscores=True)
        assert close(expires - redis_now(redis_conn), 120)

    def test_limit_holders_at_once_and_a_holder_renews_its_own(self, redis_conn, clock):
        holders = [ConnectionSlots(redis_conn, "test:slots:cap", limit=2) for _ in range(3)]
        assert holders[0].acquire(timeout=0) and holders[1].acquire(timeout=0)
        assert holders[2].acquire(timeout=0) is False
        assert holders[0].acquire(timeout=0) is True  # renewing, not a third slot
        assert redis_conn.zcard("test:slots:cap") == 2
        holders[1].release()
        assert redis_conn.zcard("test:slots:cap") == 1
        assert holders[2].acquire(timeout=0) is True

    def test_an_expired_lease_frees_its_slot(self, redis_conn, clock):
        redis_conn.zadd("test:slots:dead", {"crashed-worker": redis_now(redis_conn) - 1})
        slots = ConnectionSlots(redis_conn, "test:slots:dead", limit=1)
        assert slots.acquire(timeout=0) is True
        assert redis_conn.zscore("test:slots:dead", "crashed-worker") is None

    def test_a_full_cap_is_retried_every_tenth_of_a_second_until_the_timeout(
        self, redis_conn, clock
    ):
        assert ConnectionSlots(redis_conn, "test:slots:full", limit=1).acquire(timeout=0)
        waiting = ConnectionSlots(redis_conn, "test:slots:full", limit=1)
        assert waiting.acquire(timeout=0.35) is False
        assert clock.sleeps == [0.1, 0.1, 0.1, 0.1]
        clock.sleeps.clear()
        assert waiting.acquire(timeout=0) is False
        assert clock.sleeps == []

    def test_a_slot_freed_while_waiting_is_taken(self, redis_conn, clock):
        holder = ConnectionSlots(redis_conn, "test:slots:freed", limit=1)
        waiting = ConnectionSlots(redis_conn, "test:slots:freed", limit=1)
        assert holder.acquire(timeout=0)

        def sleep_then_free(seconds):
            clock.sleeps.append(seconds)
            clock.now += seconds
            if len(clock.sleeps) == 2:
                holder.release()

        clock.sleep = sleep_then_free
        assert waiting.acquire(timeout=10) is True
        assert clock.sleeps == [0.1, 0.1]

    @pytest.mark.parametrize("limit", [0, -1])
    def test_no_cap_means_no_redis(self, redis_conn, clock, limit):
        slots = ConnectionSlots(redis_conn, "test:slots:none", limit=limit)
        assert slots.acquire(timeout=5) is True
        slots.release()
        assert redis_conn.exists("test:slots:none") == 0
        assert clock.sleeps == []

    def test_release_without_a_slot_is_harmless(self, redis_conn, clock):
        other = ConnectionSlots(redis_conn, "test:slots:rel", limit=1)
        assert other.acquire(timeout=0)
        ConnectionSlots(redis_conn, "test:slots:rel", limit=1).release()
        assert redis_conn.zcard("test:slots:rel") == 1
