"""Opens and clicks go to a Redis list first; the worker clock drains them into tracking_events.

The pixel and the click redirect are fetched for every mail sent, often by every image proxy
and link scanner on the way, so the request does one RPUSH and nothing else: no database
connection, no classification. `drain_events` (run by `sweep` every CLOCK_INTERVAL_SECONDS)
classifies them with the same rules (app/tracking/machine.py) against the state the events
would have met had they been recorded at once, and writes them with ON CONFLICT DO NOTHING, so
duplicates are still dropped by the unique index. Stats therefore lag by up to one clock
interval. When Redis cannot take an event the request records it directly, as before.

Delivery is at least once: a batch leaves the list only after its rows are committed, by the
drainer still holding the lock; a drainer that dies or loses its lock leaves the batch for the
next one, whose repeats the unique index drops.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import threading
import time
import uuid
from collections import deque
from datetime import UTC, datetime, timedelta
from functools import cache

from flask import current_app
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import text

from app.config import Settings
from app.extensions import db
from app.links.tokens import LinkClaims
from app.queues import redis_key
from app.tracking import machine, rollups, services
from app.tracking.models import EventKind
from app.tracking.rollups import RollupChanges

log = logging.getLogger(__name__)

BATCH_SIZE = 5000
# A drain holds the lock at most this long; past it another drainer may take the same batch.
LOCK_SECONDS = 120
# The outbox thread pushes this often, or sooner once this many events wait.
FLUSH_SECONDS = 0.05
FLUSH_COUNT = 500
OUTBOX_LIMIT = 100_000
# After Redis failed, record directly for this long instead of waiting on it every request.
PAUSE_AFTER_FAILURE_SECONDS = 5.0

_OPEN, _CLICK = "o", "c"

# Trim the drained batch only while still holding the lock: otherwise another drainer owns the
# head of the list now, and trimming would drop events nobody recorded.
_TRIM_IF_OWNER = """
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('LTRIM', KEYS[1], tonumber(ARGV[2]), -1)
  return 1
end
return 0
"""
_RELEASE_IF_OWNER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def events_key(settings: Settings) -> str:
    return redis_key(settings, "tracking", "events")


def _lock_key(settings: Settings) -> str:
    return redis_key(settings, "tracking", "drain-lock")


@cache
def _client(url: str) -> Redis:
    # Short timeouts: a pixel must not hang on a Redis that is away; it records directly.
    return Redis.from_url(url, socket_connect_timeout=0.25, socket_timeout=0.5)


class _Breaker:
    """Skip Redis for a few seconds after it failed, so an outage costs one timeout, not many."""

    def __init__(self):
        self._lock = threading.Lock()
        self.closed_until = 0.0

    def is_open(self) -> bool:
        return time.monotonic() < self.closed_until

    def trip(self) -> None:
        with self._lock:
            self.closed_until = time.monotonic() + PAUSE_AFTER_FAILURE_SECONDS

    def reset(self) -> None:
        self.closed_until = 0.0


breaker = _Breaker()


def push_open(settings: Settings, claims: LinkClaims, user_agent: str, method: str) -> bool:
    """Queue an open; return False when Redis could not take it (record it directly then)."""
    return _push(settings, [_OPEN, claims.mailing_id, claims.supporter_id, 0, user_agent, method])


def push_click(
    settings: Settings, claims: LinkClaims, position: int, user_agent: str, method: str
) -> bool:
    """Queue a click on link `position`; return False when Redis could not take it."""
    return _push(
        settings, [_CLICK, claims.mailing_id, claims.supporter_id, position, user_agent, method]
    )


def _push(settings: Settings, event: list) -> bool:
    event.append(time.time())
    return outbox.put(settings, event)


class _Outbox:
    """Events of this process on their way to Redis, pushed by one thread in one RPUSH a batch.

    The request only appends to a deque: waiting for Redis's reply was most of what an open
    cost. The price is that a worker killed outright (SIGKILL, OOM) loses up to FLUSH_SECONDS
    of opens and clicks; a normal exit flushes. When Redis cannot take a batch, the thread
    records it in the database itself, with the drain's own code.
    """

    def __init__(self):
        # (app, settings, event): tests run several apps in one process.
        self._events: deque[tuple] = deque()
        self._flushing = threading.Lock()
        self._wake = threading.Event()
        self._started_in: int | None = None

    def put(self, settings: Settings, event: list) -> bool:
        if len(self._events) >= OUTBOX_LIMIT:
            return False  # the thread is stuck: let the request record it directly
        self._events.append((current_app._get_current_object(), settings, event))
        if self._started_in != os.getpid():
            self._start()
        elif len(self._events) >= FLUSH_COUNT:
            self._wake.set()
        return True

    def _start(self) -> None:
        # Started on first use in each process: a thread does not survive gunicorn's fork.
        with self._flushing:
            if self._started_in == os.getpid():
                return
            self._started_in = os.getpid()
            threading.Thread(target=self._run, name="tracking-outbox", daemon=True).start()
            atexit.register(self.flush)

    def _run(self) -> None:
        while True:
            self._wake.wait(FLUSH_SECONDS)
            self._wake.clear()
            try:
                self.flush()
            except Exception:
                log.exception("tracking buffer: flush failed")

    def flush(self) -> int:
        """Send every waiting event to Redis, or to the database when Redis is away."""
        with self._flushing:
            batch = []
            while self._events and len(batch) < BATCH_SIZE * 2:
                batch.append(self._events.popleft())
            groups: dict[tuple, tuple] = {}
            for app, settings, event in batch:
                groups.setdefault((id(app), id(settings)), (app, settings, []))[2].append(event)
            for app, settings, events in groups.values():
                self._send(app, settings, events)
            return len(batch)

    def _send(self, app, settings: Settings, batch: list[list]) -> None:
        if not breaker.is_open():
            try:
                _client(settings.redis_url).rpush(
                    events_key(settings), *(json.dumps(e) for e in batch)
                )
                return
            except RedisError:
                log.warning("tracking buffer: Redis unavailable, recording directly")
                breaker.trip()
        events = [e for e in (_parse(json.dumps(e)) for e in batch) if e is not None]
        with app.app_context():
            try:
                apply_events(events)
                db.session.commit()
            except Exception:
                # As the pixel always did: a lost open beats a broken image; log it.
                db.session.rollback()
                log.exception("tracking buffer: could not record %d events", len(events))
            finally:
                db.session.remove()


outbox = _Outbox()


def drain_events(settings: Settings, batch_size: int = BATCH_SIZE, max_batches: int = 20) -> int:
    """Move buffered events into tracking_events, oldest first; return how many were taken."""
    redis = _client(settings.redis_url)
    owner = uuid.uuid4().hex
    key, lock = events_key(settings), _lock_key(settings)
    try:
        if not redis.set(lock, owner, nx=True, ex=LOCK_SECONDS):
            return 0  # another drainer is at it
    except RedisError as exc:
        log.warning("tracking buffer: Redis unavailable, not draining (%s)", exc)
        return 0
    taken = 0
    try:
        for _ in range(max_batches):
            raw = redis.lrange(key, 0, batch_size - 1)
            if not raw:
                break
            try:
                apply_events([e for e in map(_parse, raw) if e is not None])
                db.session.commit()
            except Exception:
                db.session.rollback()
                log.exception("tracking buffer: could not record a batch; it stays queued")
                break
            if not redis.eval(_TRIM_IF_OWNER, 2, key, lock, owner, len(raw)):
                log.warning("tracking buffer: drain lock lost; the next drain repeats a batch")
                break
            taken += len(raw)
    except RedisError as exc:
        log.warning("tracking buffer: Redis failed while draining (%s)", exc)
    finally:
        with contextlib.suppress(RedisError):  # else the lock expires on its own
            redis.eval(_RELEASE_IF_OWNER, 1, lock, owner)
    return taken


def _parse(raw: bytes) -> tuple | None:
    """Return (kind, mailing_id, supporter_id, position, user_agent, method, when) or None."""
    try:
        kind, mailing_id, supporter_id, position, user_agent, method, at = json.loads(raw)
        if kind not in (_OPEN, _CLICK):
            raise ValueError(kind)
        when = datetime.fromtimestamp(float(at), UTC)
        return (
            kind,
            int(mailing_id),
            int(supporter_id),
            int(position),
            str(user_agent),
            str(method),
            when,
        )
    except (ValueError, TypeError, OverflowError):
        log.error("tracking buffer: dropping an unreadable event %r", raw[:200])
        return None


def apply_events(events: list[tuple]) -> None:
    """Record parsed events in the order they happened, as the requests themselves would have.

    Runs of opens go in one statement; each click is classified against the rows written
    before it (the burst rule needs the recipient's earlier clicks), so clicks go one by one.
    The new rows are counted into the rollups once, for the whole batch, at the end.
    """
    events.sort(key=lambda e: e[6])
    opens: list[tuple] = []
    connection = db.session.connection()
    changes = RollupChanges()
    for event in events:
        if event[0] == _OPEN:
            opens.append(event)
            continue
        _insert_opens(connection, opens, changes)
        opens = []
        kind, mailing_id, supporter_id, position, user_agent, method, when = event
        link = services.find_link(mailing_id, position)
        if link is None:
            continue  # the redirect refused it too
        since = when - timedelta(seconds=machine.BURST_WINDOW_SECONDS)
        claims = LinkClaims(mailing_id, supporter_id)
        services.record_click_at(
            connection, claims, position, link, user_agent, method, when, since, changes
        )
    _insert_opens(connection, opens, changes)
    rollups.apply(connection, changes)


# One statement for a run of opens: the rows come from `deliveries`, so a token whose delivery
# no longer names its supporter (erased) records nothing; ORDER BY keeps the earliest of
# repeats within the run, as recording them one by one did.
_OPENS_SQL = text(
    """
    INSERT INTO tracking_events (kind, mailing_id, supporter_id, delivery_id, occurred_at,
                                 user_agent_class, machine, machine_reason)
    SELECT 'open', d.mailing_id, d.supporter_id, d.id, v.occurred_at, v.ua_class, v.machine,
           v.reason
    FROM unnest(CAST(:mailing_ids AS bigint[]), CAST(:supporter_ids AS bigint[]),
                CAST(:times AS timestamptz[]), CAST(:classes AS text[]),
                CAST(:machines AS boolean[]), CAST(:reasons AS text[]))
         WITH ORDINALITY AS v(mailing_id, supporter_id, occurred_at, ua_class, machine, reason,
                              n)
    JOIN deliveries d ON d.mailing_id = v.mailing_id AND d.supporter_id = v.supporter_id
    ORDER BY v.n
    ON CONFLICT DO NOTHING
    RETURNING mailing_id, delivery_id, kind, link_position, occurred_at, machine
    """
)  # untyped: the driver's own values (an aware datetime, the kind's text) are what is needed


def _insert_opens(connection, opens: list[tuple], changes: RollupChanges) -> None:
    if not opens:
        return
    verdicts = [machine.classify("open", e[4], e[5], None, [], False) for e in opens]
    if connection.dialect.name != "postgresql":
        for event, verdict in zip(opens, verdicts, strict=True):
            services.record_event_at(
                connection,
                EventKind.OPEN,
                LinkClaims(event[1], event[2]),
                verdict,
                event[6],
                changes,
            )
        return
    returned = connection.execute(
        _OPENS_SQL,
        {
            "mailing_ids": [e[1] for e in opens],
            "supporter_ids": [e[2] for e in opens],
            "times": [e[6] for e in opens],
            "classes": [v.ua_class for v in verdicts],
            "machines": [v.machine for v in verdicts],
            "reasons": [v.reason or None for v in verdicts],
        },
    ).all()
    changes.add_rows(returned)
