"""Send-rate limits and the SMTP connection cap, shared by every worker through Redis.

Rates use GCRA ("generic cell rate algorithm"): Redis keeps one timestamp per limit, the
theoretical arrival time of the next message. A worker reserves n messages by pushing that
time forward by n × interval and waits until its reservation starts, so any number of workers
together keep to the rate without talking to each other.
"""

from __future__ import annotations

import time
import uuid

from redis import Redis

_RESERVE = """
local interval = tonumber(ARGV[1])
local count = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local next_tat = tat + interval * count
redis.call('SET', KEYS[1], tostring(next_tat), 'PX', math.ceil((next_tat - now) * 1000) + 1000)
return tostring(tat - now)
"""

# A sorted set of holders scored by lease expiry: a crashed worker's slot frees itself.
_ACQUIRE_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3])) + 60)
  return 1
end
return 0
"""


class RateLimiter:
    """Keep one or more message rates (messages/second) shared across processes."""

    def __init__(self, redis: Redis, limits: list[tuple[str, float]]):
        self._redis = redis
        self._limits = [(key, 1.0 / rate) for key, rate in limits if rate and rate > 0]
        self._script = redis.register_script(_RESERVE)
        self._allowance = 0
        self._chunk = self._chunk_size()

    def _chunk_size(self) -> int:
        # Reserve a few messages per Redis round trip at high rates; one at a time at low
        # rates so two workers interleave evenly.
        if not self._limits:
            return 0
        fastest = min(interval for _, interval in self._limits)
        return max(1, min(50, int(0.02 / fastest)))

    @property
    def active(self) -> bool:
        return bool(self._limits)

    def wait_for_slot(self) -> None:
        """Block until the next message may be sent under every limit."""
        if not self._limits:
            return
        if self._allowance == 0:
            waits = [
                float(self._script(keys=[key], args=[interval, self._chunk]))
                for key, interval in self._limits
            ]
            delay = max(waits)
            if delay > 0:
                time.sleep(delay)
            self._allowance = self._chunk
        self._allowance -= 1


class ConnectionSlots:
    """Cap the number of SMTP connections open at once across every worker."""

    def __init__(self, redis: Redis, key: str, limit: int, lease_seconds: float = 120):
        self._redis = redis
        self._key = key
        self._limit = limit
        self._lease = lease_seconds
        self._holder = uuid.uuid4().hex
        self._script = redis.register_script(_ACQUIRE_SLOT)

    def acquire(self, timeout: float) -> bool:
        """Take (or renew) a slot, waiting up to `timeout` seconds for one to free up."""
        if self._limit <= 0:
            return True
        deadline = time.monotonic() + timeout
        while True:
            if self._script(keys=[self._key], args=[self._holder, self._limit, self._lease]):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)

    def release(self) -> None:
        if self._limit > 0:
            self._redis.zrem(self._key, self._holder)
