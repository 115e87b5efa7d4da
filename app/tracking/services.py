"""Record what supporters do from their inbox, and act on their unsubscribe and preferences.

Opens and clicks sit on the hot path of every mail sent: the requests only queue them
(app/tracking/buffer.py) and the worker clock records them with the functions here, so
mailing stats lag by up to CLOCK_INTERVAL_SECONDS. Recording is INSERT … ON CONFLICT DO
NOTHING … RETURNING (plus one read for clicks), without loading ORM objects; the rows it
returns, new ones only, are counted into the rollups in the same transaction
(app/tracking/rollups.py). Nothing here commits: the views and the drain do, once.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from typing import NamedTuple

from sqlalchemy import Connection, and_, bindparam, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.db import utcnow
from app.extensions import db
from app.links.tokens import LinkClaims
from app.mailings.models import Delivery, MailingLink
from app.tracking import machine, rollups
from app.tracking.models import EventKind, TrackingEvent, event_kind_enum
from app.tracking.rollups import RETURNED_COLUMNS, EventRow, RollupChanges


class CachedLink(NamedTuple):
    id: int
    url: str
    is_honeypot: bool


class _LinkCache:
    """Links of recently clicked mailings, by position; a frozen mailing's links never change."""

    def __init__(self, size: int = 512):
        self._size = size
        self._lock = threading.Lock()
        self._mailings: OrderedDict[int, dict[int, CachedLink]] = OrderedDict()

    def get(self, mailing_id: int) -> dict[int, CachedLink] | None:
        with self._lock:
            links = self._mailings.get(mailing_id)
            if links is not None:
                self._mailings.move_to_end(mailing_id)
            return links

    def put(self, mailing_id: int, links: dict[int, CachedLink]) -> None:
        with self._lock:
            self._mailings[mailing_id] = links
            self._mailings.move_to_end(mailing_id)
            while len(self._mailings) > self._size:
                self._mailings.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._mailings.clear()


link_cache = _LinkCache()


def find_link(mailing_id: int, position: int) -> CachedLink | None:
    """Return the tracked link at `position` of that mailing, or None."""
    links = link_cache.get(mailing_id)
    if links is None:
        rows = db.session.execute(
            select(
                MailingLink.position, MailingLink.id, MailingLink.url, MailingLink.is_honeypot
            ).where(MailingLink.mailing_id == mailing_id)
        ).all()
        links = {pos: CachedLink(link_id, url, honeypot) for pos, link_id, url, honeypot in rows}
        if links:  # a mailing without links may not be frozen yet: do not remember it
            link_cache.put(mailing_id, links)
    return links.get(position)


_EVENT_COLUMNS = (
    "kind",
    "mailing_id",
    "supporter_id",
    "delivery_id",
    "occurred_at",
    "user_agent_class",
    "machine",
    "machine_reason",
)


def _insert_for(dialect: str):
    return pg_insert if dialect == "postgresql" else sqlite_insert


@functools.cache
def _event_insert(dialect: str):
    """Build once: INSERT … SELECT from the claims' delivery … ON CONFLICT DO NOTHING."""
    table = TrackingEvent.__table__
    source = select(
        bindparam("kind", type_=event_kind_enum),
        Delivery.mailing_id,
        Delivery.supporter_id,
        Delivery.id,
        bindparam("occurred_at", type_=table.c.occurred_at.type),
        bindparam("ua_class", type_=table.c.user_agent_class.type),
        bindparam("machine", type_=table.c.machine.type),
        bindparam("reason", type_=table.c.machine_reason.type),
    ).where(
        Delivery.mailing_id == bindparam("mailing_id"),
        Delivery.supporter_id == bindparam("supporter_id"),
    )
    insert = _insert_for(dialect)(table).from_select(_EVENT_COLUMNS, source)
    return insert.on_conflict_do_nothing().returning(*RETURNED_COLUMNS)


@functools.cache
def _click_insert(dialect: str):
    """Build once: the click and the open it implies, ON CONFLICT DO NOTHING."""
    insert = _insert_for(dialect)(TrackingEvent.__table__).on_conflict_do_nothing()
    return insert.returning(*RETURNED_COLUMNS)


def insert_events(rows: list[dict], changes: RollupChanges | None = None) -> int:
    """Insert ready-made tracking_events rows (an import, a backfill), counting the new ones.

    Each dict holds TrackingEvent columns; repeats of a recorded event are dropped. Returns how
    many rows were new.
    """
    if not rows:
        return 0
    connection = db.session.connection()
    returned = connection.execute(_click_insert(connection.dialect.name), rows).all()
    _count(connection, returned, changes)
    return len(returned)


def _count(connection, returned, changes: RollupChanges | None) -> None:
    """Count inserted rows now, or into the caller's batch when it gathers them."""
    if changes is not None:
        changes.add_rows(returned)
    elif returned:
        own = RollupChanges()
        own.add_rows(returned)
        rollups.apply(connection, own)


@functools.cache
def _click_context():
    """Build once: a delivery's sent_at and its recipient's clicks since :since."""
    return (
        select(
            Delivery.id, Delivery.sent_at, TrackingEvent.link_position, TrackingEvent.occurred_at
        )
        .outerjoin(
            TrackingEvent,
            and_(
                TrackingEvent.delivery_id == Delivery.id,
                TrackingEvent.kind == EventKind.CLICK,
                TrackingEvent.occurred_at >= bindparam("since"),
            ),
        )
        .where(
            Delivery.mailing_id == bindparam("mailing_id"),
            Delivery.supporter_id == bindparam("supporter_id"),
        )
    )


@contextmanager
def _event_connection() -> Iterator[Connection]:
    """Yield the session's connection; the caller commits.

    The event and its rollup increments must commit together, so this is a transaction, not
    autocommit. When it starts the transaction itself (a pixel or click recorded directly
    because Redis was away) it does not wait for the disk at commit on PostgreSQL
    (synchronous_commit off, for this transaction only): a crash of the database server could
    lose the last fraction of a second of opens and clicks, never a consent change. When the
    caller already has a transaction (an unsubscribe changes the status too; tests run inside
    an outer transaction), join it with its durability untouched.
    """
    session = db.session()  # the Session itself: scoped_session does not proxy in_transaction
    joined = session.in_transaction() or isinstance(session.get_bind(), Connection)
    connection = session.connection()
    if not joined and connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL synchronous_commit TO off")
    yield connection


def record_event(kind: EventKind, claims: LinkClaims, verdict: machine.Verdict) -> None:
    """Record an event for the claims' delivery; nothing when there is no such delivery.

    The row is selected from `deliveries`, so a token of an erased supporter (whose delivery
    no longer names them) records nothing, and duplicates are dropped by the unique index.
    """
    # Core on the session's connection: no ORM work on the pixel's hot path.
    with _event_connection() as connection:
        record_event_at(connection, kind, claims, verdict, utcnow())


def record_event_at(
    connection,
    kind: EventKind,
    claims: LinkClaims,
    verdict,
    when,
    changes: RollupChanges | None = None,
) -> None:
    """Record an event that happened at `when` on `connection` (see record_event).

    Counted into the rollups at once, or into `changes` when the caller records a batch.
    """
    returned = connection.execute(
        _event_insert(connection.dialect.name),
        {
            "kind": kind,
            "mailing_id": claims.mailing_id,
            "supporter_id": claims.supporter_id,
            "occurred_at": when,
            "ua_class": verdict.ua_class,
            "machine": verdict.machine,
            "reason": verdict.reason or None,
        },
    ).all()
    _count(connection, returned, changes)


def record_open(claims: LinkClaims, user_agent: str | None, method: str) -> machine.Verdict:
    """Classify and record an open (the pixel was fetched)."""
    verdict = machine.classify("open", user_agent, method, None, [], False)
    record_event(EventKind.OPEN, claims, verdict)
    return verdict


def record_click(
    claims: LinkClaims, position: int, link: CachedLink, user_agent: str | None, method: str
) -> machine.Verdict | None:
    """Classify and record a click, and the open it implies; None when there is no delivery."""
    now = utcnow()
    since = now - timedelta(seconds=machine.BURST_WINDOW_SECONDS)
    with _event_connection() as connection:
        return record_click_at(connection, claims, position, link, user_agent, method, now, since)


def record_click_at(
    connection, claims, position, link, user_agent, method, now, since, changes=None
):
    """Classify and record a click made at `now` on `connection` (see record_click).

    Judged against the rows recorded before it, so buffered clicks drained in order of time
    get the verdict they would have had at once. Counted into the rollups at once, or into
    `changes` when the caller records a batch.
    """
    # One round trip: the delivery's sent_at and this recipient's clicks in the burst window.
    rows = connection.execute(
        _click_context(),
        {"since": since, "mailing_id": claims.mailing_id, "supporter_id": claims.supporter_id},
    ).all()
    if not rows:
        return None
    delivery_id, sent_at = rows[0][0], rows[0][1]
    recent = [(pos, (now - at).total_seconds()) for _, _, pos, at in rows if at is not None]
    recent.append((position, 0.0))
    since_delivery = (now - sent_at).total_seconds() if sent_at is not None else None
    verdict = machine.classify(
        "click", user_agent, method, since_delivery, recent, link.is_honeypot
    )
    common = {
        "mailing_id": claims.mailing_id,
        "supporter_id": claims.supporter_id,
        "delivery_id": delivery_id,
        "occurred_at": now,
        "user_agent_class": verdict.ua_class,
        "machine": verdict.machine,
        "machine_reason": verdict.reason or None,
    }
    # A click implies an open (images may have been blocked); the open row is dropped when
    # one of the same human-or-machine kind exists already.
    values = [
        {"kind": EventKind.CLICK, "link_id": link.id, "link_position": position, **common},
        {"kind": EventKind.OPEN, "link_id": None, "link_position": None, **common},
    ]
    batch = RollupChanges() if changes is None else changes
    batch.add_rows(connection.execute(_click_insert(connection.dialect.name), values).all())
    if verdict.reason == "burst":
        _mark_burst(delivery_id, since, now, batch)
    if changes is None:
        rollups.apply(connection, batch)
    return verdict


_CHANGED_ROWS = "RETURNING mailing_id, delivery_id, kind, link_position, occurred_at, machine"


def _mark_burst(delivery_id: int, since, until, changes: RollupChanges) -> None:
    """Turn the burst's earlier human clicks (and the opens they implied) into machine ones.

    The rows re-judged go into `changes`: the recipient's human stamps and counts may fall.
    """
    # Bounded by `until` too: a drained batch may already hold later clicks judged on their own.
    params = {"delivery_id": delivery_id, "since": since, "until": until}
    # Flip the flag where no machine twin holds the (delivery, kind, link, machine) key yet…
    flipped = db.session.execute(
        text(
            """
            UPDATE tracking_events SET machine = true, machine_reason = 'burst'
            WHERE delivery_id = :delivery_id AND kind IN ('click', 'open') AND NOT machine
              AND occurred_at >= :since AND occurred_at <= :until
              AND NOT EXISTS (
                SELECT 1 FROM tracking_events twin
                WHERE twin.delivery_id = tracking_events.delivery_id
                  AND twin.kind = tracking_events.kind
                  AND coalesce(twin.link_position, -1) = coalesce(tracking_events.link_position, -1)
                  AND twin.machine)
            """
            + _CHANGED_ROWS
        ).columns(*RETURNED_COLUMNS),
        params,
    ).all()
    # …and drop the human rows whose machine twin exists: they were the same scanner.
    dropped = db.session.execute(
        text(
            """
            DELETE FROM tracking_events
            WHERE delivery_id = :delivery_id AND kind IN ('click', 'open') AND NOT machine
              AND occurred_at >= :since AND occurred_at <= :until
            """
            + _CHANGED_ROWS
        ).columns(*RETURNED_COLUMNS),
        params,
    ).all()
    for row in map(EventRow.of, flipped):
        changes.removed.append(replace(row, machine=False))  # the row as it was
        changes.added.append(row)
    changes.removed.extend(map(EventRow.of, dropped))
    changes.rejudged.add(delivery_id)
