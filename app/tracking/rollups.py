"""Keep each mailing's figures current as events are recorded, so reports never count events.

Every write of tracking_events (app/tracking/services.py, the buffer's batches) collects the
rows it inserted, and the rows a burst re-judged as machine, in a `RollupChanges`, and calls
`apply` in the same transaction. `apply` costs a fixed number of statements per batch, not per
event:

- first-time stamps on `deliveries` (opened_at, human_opened_at …) become the earliest time of
  the recipient's rows of that kind: the unique counts move only when a stamp goes from NULL to
  a time (or back to NULL, when the only "human" row turns out to be a scanner's);
- `link_first_clicks` does the same per (delivery, link), for unique clickers per link;
- `mailing_rollups`, `mailing_hourly_rollups` and `link_rollups` get the resulting deltas in
  one INSERT … ON CONFLICT DO UPDATE SET n = n + excluded.n each.

The rows touched are locked (FOR UPDATE, in id order) before they are compared, so a drain and
a request recording for the same recipient at once still count them once. Duplicates never
reach here: the event INSERT … ON CONFLICT DO NOTHING RETURNING hands back only new rows.

`app/tracking/rebuild.py` (`clarion stats rebuild`) recomputes all of it from the events; it
must agree exactly.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

from sqlalchemy import (
    Connection,
    and_,
    func,
    not_,
    select,
)

from app.mailings.models import VARIANT_COUNTERS, AbVariantRollup, Delivery
from app.tracking.counter_sql import add_counts, among, insert_for, update_rows
from app.tracking.models import (
    EventKind,
    LinkFirstClick,
    LinkRollup,
    MailingHourlyRollup,
    MailingRollup,
    TrackingEvent,
)


class Stamp(NamedTuple):
    """A first-time stamp on deliveries and the unique count it feeds."""

    column: str
    kind: EventKind
    human_only: bool
    counter: str


STAMPS = (
    Stamp("opened_at", EventKind.OPEN, False, "opens"),
    Stamp("human_opened_at", EventKind.OPEN, True, "human_opens"),
    Stamp("clicked_at", EventKind.CLICK, False, "clicks"),
    Stamp("human_clicked_at", EventKind.CLICK, True, "human_clicks"),
    Stamp("acted_at", EventKind.ACTION, False, "actions"),
    Stamp("unsubscribed_at", EventKind.UNSUBSCRIBE, False, "unsubscribes"),
)
STAMP_COLUMNS = tuple(s.column for s in STAMPS)
_STAMPS_OF = {
    kind: tuple((s.column, s.human_only) for s in STAMPS if s.kind == kind) for kind in EventKind
}
# Event totals: rows of tracking_events, all and those judged to be people.
EVENT_COUNTERS = {
    EventKind.OPEN: ("open_events", "human_open_events"),
    EventKind.CLICK: ("click_events", "human_click_events"),
}
MAILING_COUNTERS = tuple(s.counter for s in STAMPS) + tuple(
    name for pair in EVENT_COUNTERS.values() for name in pair
)
# Per link: unique clickers (from link_first_clicks) and click rows.
LINK_STAMPS = (("clicked_at", False, "clicks"), ("human_clicked_at", True, "human_clicks"))
LINK_COUNTERS = ("clicks", "human_clicks", "click_events", "human_click_events")


@dataclass(frozen=True, slots=True)
class EventRow:
    """One tracking_events row, as far as the rollups care."""

    mailing_id: int
    delivery_id: int
    kind: EventKind
    link_position: int | None
    occurred_at: datetime
    machine: bool

    @classmethod
    def of(cls, row) -> EventRow:
        """Read a row returned by an event INSERT/UPDATE/DELETE … RETURNING RETURNED_COLUMNS."""
        mailing_id, delivery_id, kind, position, occurred_at, machine = row
        return cls(
            mailing_id, delivery_id, EventKind(kind), position, _aware(occurred_at), bool(machine)
        )


@dataclass
class RollupChanges:
    """What one transaction did to tracking_events, for `apply` to count."""

    added: list[EventRow] = field(default_factory=list)
    removed: list[EventRow] = field(default_factory=list)
    # Deliveries whose rows were re-judged: their stamps are read from their rows again.
    rejudged: set[int] = field(default_factory=set)

    def add_rows(self, rows: Iterable) -> None:
        """Take rows returned by an INSERT … RETURNING (see RETURNED_COLUMNS)."""
        self.added.extend(map(EventRow.of, rows))

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.rejudged)


# What an event INSERT / UPDATE / DELETE … RETURNING hands back for EventRow.of.
RETURNED_COLUMNS = (
    TrackingEvent.mailing_id,
    TrackingEvent.delivery_id,
    TrackingEvent.kind,
    TrackingEvent.link_position,
    TrackingEvent.occurred_at,
    TrackingEvent.machine,
)


def hour_of(moment: datetime) -> datetime:
    if moment.utcoffset():
        moment = moment.astimezone(UTC)
    return moment.replace(minute=0, second=0, microsecond=0)


def counts_as(stamp_kind: EventKind, human_only: bool, row: EventRow) -> bool:
    """Whether the row can set a stamp of that kind: humans-only stamps ignore machines."""
    return row.kind == stamp_kind and not (human_only and row.machine)


def stamp_minimum(kind: EventKind, human_only: bool):
    """SQL: the earliest of the grouped events that can set the stamp (None when none can)."""
    condition = TrackingEvent.kind == kind
    if human_only:
        condition = and_(condition, not_(TrackingEvent.machine))
    return func.min(TrackingEvent.occurred_at).filter(condition)


def apply(connection: Connection, changes: RollupChanges) -> None:
    """Count the changes into the stamps and rollups, in the caller's transaction."""
    if not changes:
        return
    mailing: Counter = Counter()
    hourly: Counter = Counter()
    links: Counter = Counter()
    # Rows grouped first (a batch has thousands of rows but a few mailings, hours and links).
    grouped: Counter = Counter()
    for rows, sign in ((changes.added, 1), (changes.removed, -1)):
        for row in rows:
            if row.kind in EVENT_COUNTERS:
                hour = hour_of(row.occurred_at)
                grouped[row.mailing_id, hour, row.kind, row.machine, row.link_position] += sign
    for (mailing_id, hour, kind, is_machine, position), delta in grouped.items():
        every, people = EVENT_COUNTERS[kind]
        for name in (every,) if is_machine else (every, people):
            mailing[mailing_id, name] += delta
            hourly[mailing_id, hour, name] += delta
            if kind == EventKind.CLICK and position is not None:
                links[mailing_id, position, name] += delta
    variants: Counter = Counter()
    _move_delivery_stamps(connection, changes, mailing, hourly, variants)
    _move_link_stamps(connection, changes, links)
    dialect = connection.dialect.name
    add_counts(connection, dialect, MailingRollup, ("mailing_id",), MAILING_COUNTERS, mailing)
    add_counts(
        connection,
        dialect,
        AbVariantRollup,
        ("variant_id", "mailing_id"),
        VARIANT_COUNTERS,
        variants,
        conflict_keys=("variant_id",),
    )
    add_counts(
        connection,
        dialect,
        MailingHourlyRollup,
        ("mailing_id", "hour"),
        MAILING_COUNTERS,
        hourly,
    )
    add_counts(
        connection, dialect, LinkRollup, ("mailing_id", "link_position"), LINK_COUNTERS, links
    )


def _move_delivery_stamps(
    connection, changes, mailing: Counter, hourly: Counter, variants: Counter
) -> None:
    earliest: dict[int, dict[str, datetime]] = defaultdict(dict)
    for row in changes.added:
        found = earliest[row.delivery_id]
        for column, human_only in _STAMPS_OF[row.kind]:
            if not (human_only and row.machine):
                known = found.get(column)
                if known is None or row.occurred_at < known:
                    found[column] = row.occurred_at
    ids = sorted(set(earliest) | changes.rejudged)
    if not ids:
        return
    columns = [Delivery.__table__.c[name] for name in STAMP_COLUMNS]
    current = connection.execute(
        select(Delivery.id, Delivery.mailing_id, Delivery.variant_id, *columns)
        .where(among(Delivery.id, ids, connection.dialect.name))
        .order_by(Delivery.id)
        .with_for_update()
    ).all()
    recounted = _stamps_from_events(connection, changes.rejudged)
    updates = []
    moved: set[str] = set()
    for delivery_id, mailing_id, variant_id, *stamps in current:
        old = dict(zip(STAMP_COLUMNS, map(_aware, stamps), strict=True))
        if delivery_id in changes.rejudged:
            new = recounted.get(delivery_id, dict.fromkeys(STAMP_COLUMNS))
        else:
            new = dict(old)
            for name, moment in earliest[delivery_id].items():
                if old[name] is None or moment < old[name]:
                    new[name] = moment
        if new == old:
            continue
        for stamp in STAMPS:
            if old[stamp.column] != new[stamp.column]:
                moved.add(stamp.column)
                _count_move(
                    mailing_id, stamp.counter, old[stamp.column], new[stamp.column], mailing, hourly
                )
                if variant_id is not None and (old[stamp.column] is None) != (
                    new[stamp.column] is None
                ):
                    # An A/B test recipient: the variant's unique count moves with the mailing's.
                    variants[variant_id, mailing_id, stamp.counter] += (
                        1 if new[stamp.column] is not None else -1
                    )
        new["id"] = delivery_id
        updates.append(new)
    # Only the stamps that moved in this batch (a run of opens moves two of the six).
    columns = tuple(name for name in STAMP_COLUMNS if name in moved)
    update_rows(connection, Delivery.__table__, ("id",), columns, updates)


def _stamps_from_events(connection, delivery_ids: set[int]) -> dict[int, dict]:
    if not delivery_ids:
        return {}
    rows = connection.execute(
        select(
            TrackingEvent.delivery_id,
            *(stamp_minimum(s.kind, s.human_only) for s in STAMPS),
        )
        .where(TrackingEvent.delivery_id.in_(sorted(delivery_ids)))
        .group_by(TrackingEvent.delivery_id)
    )
    return {
        delivery_id: dict(zip(STAMP_COLUMNS, map(_aware, stamps), strict=True))
        for delivery_id, *stamps in rows
    }


def _move_link_stamps(connection, changes, links: Counter) -> None:
    earliest: dict[tuple[int, int], dict[str, datetime]] = defaultdict(dict)
    mailing_of: dict[tuple[int, int], int] = {}
    for row in changes.added:
        if row.kind != EventKind.CLICK or row.link_position is None:
            continue
        key = (row.delivery_id, row.link_position)
        mailing_of[key] = row.mailing_id
        found = earliest[key]
        for name, human_only, _ in LINK_STAMPS:
            if not (human_only and row.machine):
                known = found.get(name)
                if known is None or row.occurred_at < known:
                    found[name] = row.occurred_at
    rejudged = {
        (row.delivery_id, row.link_position)
        for row in changes.removed
        if row.kind == EventKind.CLICK and row.link_position is not None
    }
    for row in changes.removed:
        if (row.delivery_id, row.link_position) in rejudged:
            mailing_of.setdefault((row.delivery_id, row.link_position), row.mailing_id)
    keys = set(earliest) | rejudged
    if not keys:
        return
    dialect = connection.dialect.name
    table = LinkFirstClick.__table__
    # The row must exist to be locked: a first click creates it with no stamps yet.
    fresh = [
        {"delivery_id": d, "link_position": p, "mailing_id": mailing_of[d, p]}
        for d, p in sorted(set(earliest))
    ]
    if fresh:
        connection.execute(insert_for(dialect)(table).on_conflict_do_nothing(), fresh)
    deliveries = sorted({d for d, _ in keys})
    current = {
        (d, p): (_aware(clicked), _aware(human))
        for d, p, clicked, human in connection.execute(
            select(
                table.c.delivery_id,
                table.c.link_position,
                table.c.clicked_at,
                table.c.human_clicked_at,
            )
            .where(table.c.delivery_id.in_(deliveries))
            .order_by(table.c.delivery_id, table.c.link_position)
            .with_for_update()
        )
        if (d, p) in keys
    }
    recounted = {}
    if rejudged:
        for d, p, clicked, human in connection.execute(
            select(
                TrackingEvent.delivery_id,
                TrackingEvent.link_position,
                stamp_minimum(EventKind.CLICK, False),
                stamp_minimum(EventKind.CLICK, True),
            )
            .where(
                TrackingEvent.delivery_id.in_(sorted({d for d, _ in rejudged})),
                TrackingEvent.kind == EventKind.CLICK,
            )
            .group_by(TrackingEvent.delivery_id, TrackingEvent.link_position)
        ):
            recounted[d, p] = (_aware(clicked), _aware(human))
    updates = []
    for key, old in current.items():
        if key in rejudged:
            new = recounted.get(key, (None, None))
        else:
            found = earliest[key]
            new = (
                _earlier(old[0], found.get("clicked_at")),
                _earlier(old[1], found.get("human_clicked_at")),
            )
        if new == old:
            continue
        mailing_id = mailing_of[key]
        for n, (_, _, counter) in enumerate(LINK_STAMPS):
            if (old[n] is None) != (new[n] is None):
                links[mailing_id, key[1], counter] += 1 if new[n] is not None else -1
        updates.append(
            {
                "delivery_id": key[0],
                "link_position": key[1],
                "clicked_at": new[0],
                "human_clicked_at": new[1],
            }
        )
    update_rows(
        connection,
        table,
        ("delivery_id", "link_position"),
        ("clicked_at", "human_clicked_at"),
        updates,
    )


def _count_move(mailing_id, counter, old, new, mailing: Counter, hourly: Counter) -> None:
    """A stamp moved from `old` to `new`: move its first-time count between hours."""
    if old == new:
        return
    if old is not None:
        hourly[mailing_id, hour_of(old), counter] -= 1
    if new is not None:
        hourly[mailing_id, hour_of(new), counter] += 1
    if (old is None) != (new is None):
        mailing[mailing_id, counter] += 1 if new is not None else -1


def _earlier(known: datetime | None, candidate: datetime | None) -> datetime | None:
    if known is None:
        return candidate
    if candidate is None:
        return known
    return min(known, candidate)


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment
