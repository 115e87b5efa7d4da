"""A mailing's report tables as CSV: deliveries with each recipient's outcome, events, links.

Streamed: rows come from a server-side cursor in pieces, so memory stays flat at a million
deliveries. Every text cell goes through spreadsheet_safe, the one guard against formula
injection (= + - @, tab, CR at a cell's start) every CSV Clarion writes shares. Emails are
blank once the supporter is erased; the outcome rows stay.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import datetime

from sqlalchemy import String, case, func, select

from app.errors import Invalid, NotFound
from app.extensions import db
from app.mailings.models import (
    VARIANT_LABELS,
    BounceEvent,
    BounceKind,
    Delivery,
    DeliveryStatus,
    Mailing,
    MailingLink,
    MailingVariant,
)
from app.supporters.csvcells import spreadsheet_safe
from app.supporters.models import Supporter
from app.tracking.models import TrackingEvent
from app.tracking.reports import link_figures
from app.tracking.stats import mailing_stats

ROWS_PER_PIECE = 1000
DELIVERY_COLUMNS = (
    "delivery_id",
    "email",
    "status",
    # A/B tests: the version the recipient got (A-E) and whether they were in the test portion
    # or the rest (sent the winner); both blank for a mailing without a test.
    "variant",
    "ab_group",
    "sent_at",
    "opened_at",
    "human_opened_at",
    "clicked_at",
    "human_clicked_at",
    "acted_at",
    "unsubscribed_at",
    "bounced",
    "complained",
)
EVENT_COLUMNS = ("occurred_at", "kind", "by", "link_position", "link_url", "delivery_id")
LINK_COLUMNS = (
    "position",
    "url",
    "variant",
    "honeypot",
    "clicks",
    "unique",
    "unique_human",
    "human_rate",
)
EXPORTS = ("deliveries", "events", "links")


def export_csv(mailing_id: int, table: str) -> Iterator[str]:
    """Stream one of the mailing's tables (deliveries, events, links) as CSV text.

    Checks the mailing and the table before the first row, so an edge can answer 404 or 422
    instead of a broken download.
    """
    mailing = db.session.get(Mailing, mailing_id)
    if mailing is None:
        raise NotFound(f"No mailing with id {mailing_id}.")
    if table == "deliveries":
        # Read the A/B test now: the rows stream after the view returned, when `mailing` may
        # no longer be in a session (a lazy load then raises DetachedInstanceError).
        test = mailing.ab_test
        winner = test.winner.label if test is not None and test.winner is not None else ""
        return _stream(DELIVERY_COLUMNS, _delivery_rows(mailing.id, test is not None, winner))
    if table == "events":
        return _stream(EVENT_COLUMNS, _event_rows(mailing_id))
    if table == "links":
        delivered = mailing_stats(mailing_id)["deliveries"][DeliveryStatus.SENT.value]
        rows = (
            (
                f.position,
                f.url,
                f.variant,
                f.is_honeypot,
                f.clicks,
                f.unique,
                f.unique_human,
                f.human_rate,
            )
            for f in link_figures(mailing_id, delivered)
        )
        return _stream(LINK_COLUMNS, rows)
    raise UnknownExport(f"Export deliveries, events or links, not {table!r}.")


class UnknownExport(Invalid):
    """A table other than deliveries, events or links was asked for."""


def _delivery_rows(mailing_id: int, ab_tested: bool, winner: str) -> Iterator[tuple]:
    # Bounce reports are a small share of deliveries: grouped once, joined to each row.
    bounces = (
        select(
            BounceEvent.delivery_id,
            func.min(BounceEvent.kind.cast(String))
            .filter(BounceEvent.kind != BounceKind.COMPLAINT)
            .label("bounced"),
            func.bool_or(BounceEvent.kind == BounceKind.COMPLAINT).label("complained"),
        )
        .where(BounceEvent.mailing_id == mailing_id)
        .group_by(BounceEvent.delivery_id)
        .subquery()
    )
    stmt = (
        select(
            Delivery.id,
            Supporter.email,
            Delivery.status,
            MailingVariant.position,
            Delivery.sent_at,
            Delivery.opened_at,
            Delivery.human_opened_at,
            Delivery.clicked_at,
            Delivery.human_clicked_at,
            Delivery.acted_at,
            Delivery.unsubscribed_at,
            bounces.c.bounced,
            func.coalesce(bounces.c.complained, False),
        )
        .outerjoin(Supporter, Supporter.id == Delivery.supporter_id)
        .outerjoin(MailingVariant, MailingVariant.id == Delivery.variant_id)
        .outerjoin(bounces, bounces.c.delivery_id == Delivery.id)
        .where(Delivery.mailing_id == mailing_id)
        .order_by(Delivery.id)
        .execution_options(yield_per=ROWS_PER_PIECE)
    )
    # Run when the download starts streaming, not in the view: a server-side cursor lives
    # only as long as its transaction, which can end between the view returning and the first
    # row being sent (the browser story caught it: "cursor does not exist").
    for delivery_id, email, status, position, *rest in db.session.execute(stmt):
        if not ab_tested:
            variant = group = ""
        elif position is not None:
            variant, group = VARIANT_LABELS[position], "test"
        else:
            variant, group = winner, "rest"
        yield (delivery_id, email, status, variant, group, *rest)


def _event_rows(mailing_id: int) -> Iterator[tuple]:
    stmt = (
        select(
            TrackingEvent.occurred_at,
            TrackingEvent.kind,
            case((TrackingEvent.machine, "machine"), else_="human"),
            TrackingEvent.link_position,
            MailingLink.url,
            TrackingEvent.delivery_id,
        )
        .outerjoin(
            MailingLink,
            (MailingLink.mailing_id == TrackingEvent.mailing_id)
            & (MailingLink.position == TrackingEvent.link_position),
        )
        .where(TrackingEvent.mailing_id == mailing_id)
        .order_by(TrackingEvent.id)
        .execution_options(yield_per=ROWS_PER_PIECE)
    )
    # Run when the download starts streaming, not in the view: a server-side cursor lives
    # only as long as its transaction, which can end between the view returning and the first
    # row being sent (the browser story caught it: "cursor does not exist").
    yield from db.session.execute(stmt)


def _stream(header: tuple[str, ...], rows: Iterable[tuple]) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for count, row in enumerate(rows, 1):
        writer.writerow([_cell(value) for value in row])
        if count % ROWS_PER_PIECE == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:.6f}"
    return spreadsheet_safe(str(getattr(value, "value", value)))
