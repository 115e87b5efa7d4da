"""Recompute the stamps and rollups from tracking_events, in SQL: `clarion stats rebuild`.

The definitions here are the independent ones: a stamp is the earliest event of its kind, a
unique count is the number of deliveries with that stamp, an hour's first-time count is the
number of stamps in that hour, a link's unique clickers are the distinct deliveries with a
click row on it. The live increments (app/tracking/rollups.py) must always agree exactly; the
tests check that, and a nightly rebuild says how many figures it had to correct.
"""

from __future__ import annotations

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    literal_column,
    not_,
    or_,
    select,
    type_coerce,
    union_all,
    update,
)

from app.db import UtcDateTime
from app.extensions import db
from app.mailings.abtest.results import count_variant_outcomes
from app.mailings.delivery.outcomes import FINISHED_STATUSES, settle_outcome_counts
from app.mailings.feedback.bounces import VARIANT_BOUNCE_COUNTERS
from app.mailings.models import (
    VARIANT_COUNTERS,
    AbTest,
    AbVariantRollup,
    BounceEvent,
    Delivery,
    Mailing,
)
from app.tracking.models import (
    EventKind,
    LinkFirstClick,
    LinkRollup,
    MailingHourlyRollup,
    MailingRollup,
    TrackingEvent,
)
from app.tracking.rollups import (
    EVENT_COUNTERS,
    LINK_COUNTERS,
    MAILING_COUNTERS,
    STAMP_COLUMNS,
    STAMPS,
    stamp_minimum,
)


def rebuild(mailing_id: int | None = None) -> None:
    """Recompute stamps and rollups of one mailing (or all) from their events; no commit."""
    stamps = [Delivery.__table__.c[name] for name in STAMP_COLUMNS]
    events = TrackingEvent.delivery_id.is_not(None)
    if mailing_id is not None:
        events = and_(events, TrackingEvent.mailing_id == mailing_id)

    def of_mailing(column) -> ColumnElement[bool]:
        return column == mailing_id if mailing_id is not None else literal(True)

    # Stamps: forget them, then set each delivery's from its events.
    db.session.execute(
        update(Delivery)
        .where(of_mailing(Delivery.mailing_id), or_(*(c.is_not(None) for c in stamps)))
        .values(dict.fromkeys(STAMP_COLUMNS))
        .execution_options(synchronize_session=False)
    )
    earliest = (
        select(
            TrackingEvent.delivery_id,
            *(stamp_minimum(s.kind, s.human_only).label(s.column) for s in STAMPS),
        )
        .where(events)
        .group_by(TrackingEvent.delivery_id)
        .subquery()
    )
    db.session.execute(
        update(Delivery)
        .where(Delivery.id == earliest.c.delivery_id)
        .values({name: earliest.c[name] for name in STAMP_COLUMNS})
        .execution_options(synchronize_session=False)
    )

    # First clicks per (delivery, link).
    clicks = and_(events, TrackingEvent.kind == EventKind.CLICK)
    db.session.execute(delete(LinkFirstClick).where(of_mailing(LinkFirstClick.mailing_id)))
    db.session.execute(
        insert(LinkFirstClick).from_select(
            ["delivery_id", "link_position", "mailing_id", "clicked_at", "human_clicked_at"],
            select(
                TrackingEvent.delivery_id,
                TrackingEvent.link_position,
                TrackingEvent.mailing_id,
                stamp_minimum(EventKind.CLICK, False),
                stamp_minimum(EventKind.CLICK, True),
            )
            .where(clicks, TrackingEvent.link_position.is_not(None))
            .group_by(
                TrackingEvent.delivery_id, TrackingEvent.link_position, TrackingEvent.mailing_id
            ),
        )
    )

    # Per mailing: stamps counted over deliveries, events over tracking_events.
    db.session.execute(delete(MailingRollup).where(of_mailing(MailingRollup.mailing_id)))
    uniques = (
        select(
            Delivery.mailing_id,
            *(func.count(Delivery.__table__.c[s.column]).label(s.counter) for s in STAMPS),
        )
        .where(of_mailing(Delivery.mailing_id), or_(*(c.is_not(None) for c in stamps)))
        .group_by(Delivery.mailing_id)
        .subquery()
    )
    totals = (
        select(TrackingEvent.mailing_id, *_event_totals())
        .where(events)
        .group_by(TrackingEvent.mailing_id)
    ).subquery()
    event_names = [name for pair in EVENT_COUNTERS.values() for name in pair]
    db.session.execute(
        insert(MailingRollup).from_select(
            ["mailing_id", *MAILING_COUNTERS],
            select(
                uniques.c.mailing_id,
                *(uniques.c[s.counter] for s in STAMPS),
                *(func.coalesce(totals.c[name], 0) for name in event_names),
            ).outerjoin(totals, totals.c.mailing_id == uniques.c.mailing_id),
        )
    )

    # Per hour: each stamp in its hour, each event in its hour.
    db.session.execute(
        delete(MailingHourlyRollup).where(of_mailing(MailingHourlyRollup.mailing_id))
    )
    dialect = db.session.get_bind().dialect.name
    parts = []
    for stamp in STAMPS:
        column = Delivery.__table__.c[stamp.column]
        parts.append(
            select(
                Delivery.mailing_id.label("mailing_id"),
                _hour(column, dialect).label("hour"),
                *(literal(int(name == stamp.counter)).label(name) for name in MAILING_COUNTERS),
            ).where(of_mailing(Delivery.mailing_id), column.is_not(None))
        )
    parts.append(
        select(
            TrackingEvent.mailing_id.label("mailing_id"),
            _hour(TrackingEvent.occurred_at, dialect).label("hour"),
            *(literal(0).label(s.counter) for s in STAMPS),
            *(case((condition, 1), else_=0).label(name) for name, condition in _event_conditions()),
        ).where(events)
    )
    every = union_all(*parts).subquery()
    db.session.execute(
        insert(MailingHourlyRollup).from_select(
            ["mailing_id", "hour", *MAILING_COUNTERS],
            select(
                every.c.mailing_id,
                every.c.hour,
                *(func.sum(every.c[name]) for name in MAILING_COUNTERS),
            ).group_by(every.c.mailing_id, every.c.hour),
        )
    )

    # Per link: distinct clickers and click rows.
    db.session.execute(delete(LinkRollup).where(of_mailing(LinkRollup.mailing_id)))
    clickers = TrackingEvent.delivery_id.distinct()
    human = not_(TrackingEvent.machine)
    db.session.execute(
        insert(LinkRollup).from_select(
            ["mailing_id", "link_position", *LINK_COUNTERS],
            select(
                TrackingEvent.mailing_id,
                TrackingEvent.link_position,
                func.count(clickers),
                func.count(clickers).filter(human),
                func.count(),
                func.count().filter(human),
            )
            .where(clicks, TrackingEvent.link_position.is_not(None))
            .group_by(TrackingEvent.mailing_id, TrackingEvent.link_position),
        )
    )
    _rebuild_variant_rollups(of_mailing, stamps)

    # Outcome counts of finished mailings, counted again.
    finished = select(Mailing.id).where(Mailing.status.in_(FINISHED_STATUSES))
    if mailing_id is not None:
        finished = finished.where(Mailing.id == mailing_id)
    for finished_id in db.session.scalars(finished):
        settle_outcome_counts(finished_id)
    db.session.flush()


def _rebuild_variant_rollups(of_mailing, stamps) -> None:
    """A/B variants: stamps counted over the test portion's deliveries, first complaints and
    hard bounces over bounce_events, and settled outcome counts counted again."""
    db.session.execute(delete(AbVariantRollup).where(of_mailing(AbVariantRollup.mailing_id)))
    tested = and_(of_mailing(Delivery.mailing_id), Delivery.variant_id.is_not(None))
    reports = {
        name: exists().where(
            BounceEvent.mailing_id == Delivery.mailing_id,
            BounceEvent.kind == kind,
            BounceEvent.delivery_id == Delivery.id,
        )
        for kind, name in VARIANT_BOUNCE_COUNTERS.items()
    }
    db.session.execute(
        insert(AbVariantRollup).from_select(
            ["variant_id", "mailing_id", *(s.counter for s in STAMPS), *reports],
            select(
                Delivery.variant_id,
                Delivery.mailing_id,
                *(func.count(Delivery.__table__.c[s.column]) for s in STAMPS),
                *(func.count().filter(found) for found in reports.values()),
            )
            .where(tested)
            .group_by(Delivery.variant_id, Delivery.mailing_id),
        )
    )
    settled = select(AbTest).where(
        of_mailing(AbTest.mailing_id), AbTest.variant_outcomes.is_not(None)
    )
    for test in db.session.scalars(settled):
        test.variant_outcomes = count_variant_outcomes(test.mailing_id)


def _event_conditions():
    for kind, (every, people) in EVENT_COUNTERS.items():
        yield every, TrackingEvent.kind == kind
        yield people, and_(TrackingEvent.kind == kind, not_(TrackingEvent.machine))


def _event_totals():
    return [func.count().filter(condition).label(name) for name, condition in _event_conditions()]


def _hour(column, dialect: str):
    """SQL: the UTC hour a timestamp falls in, as the live rollups write it (rollups.hour_of)."""
    if dialect == "postgresql":
        # Literals, not parameters: GROUP BY must match the select list's text.
        return func.date_trunc(literal_column("'hour'"), column, literal_column("'UTC'"))
    # SQLite stores UTC as text; this is the form SQLAlchemy writes a datetime in.
    return type_coerce(
        func.strftime(literal_column("'%Y-%m-%d %H:00:00.000000'"), column), UtcDateTime
    )


def rollup_state(mailing_id: int) -> dict:
    """Return one mailing's rollups as plain data, leaving out all-zero rows: for comparing."""

    def counters(row, names) -> dict:
        return {name: getattr(row, name) for name in names if getattr(row, name)}

    state: dict = {"mailing": {}, "hourly": {}, "links": {}, "variants": {}}
    rollup = db.session.get(MailingRollup, mailing_id, populate_existing=True)
    if rollup is not None:
        state["mailing"] = counters(rollup, MAILING_COUNTERS)
    for row in db.session.scalars(
        select(MailingHourlyRollup)
        .where(MailingHourlyRollup.mailing_id == mailing_id)
        .execution_options(populate_existing=True)
    ):
        if found := counters(row, MAILING_COUNTERS):
            state["hourly"][row.hour] = found
    for row in db.session.scalars(
        select(LinkRollup)
        .where(LinkRollup.mailing_id == mailing_id)
        .execution_options(populate_existing=True)
    ):
        if found := counters(row, LINK_COUNTERS):
            state["links"][row.link_position] = found
    for row in db.session.scalars(
        select(AbVariantRollup)
        .where(AbVariantRollup.mailing_id == mailing_id)
        .execution_options(populate_existing=True)
    ):
        if found := counters(row, VARIANT_COUNTERS):
            state["variants"][row.variant_id] = found
    return state


def differences(before: dict, after: dict) -> int:
    """Count the figures that differ between two rollup_state results."""
    changed = 0
    for part in ("mailing", "hourly", "links", "variants"):
        if part == "mailing":
            pairs = [(before[part], after[part])]
        else:
            keys = before[part].keys() | after[part].keys()
            pairs = [(before[part].get(k, {}), after[part].get(k, {})) for k in keys]
        for old, new in pairs:
            changed += sum(old.get(n, 0) != new.get(n, 0) for n in old.keys() | new.keys())
    return changed
