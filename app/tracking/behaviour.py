"""Segment conditions about mailings: who was sent what, and who read or clicked it.

People only: opens and clicks made by machines (privacy proxies fetching images, link scanners)
are left out, so "did not open" still finds the people an Apple Mail proxy opened for. A human
click counts as an open, as it does in the mailing's figures (stats.py): the mail was read even
when its images were blocked.

Each condition is an EXISTS / NOT EXISTS correlated on the supporter, answered from indexes:
events by supporter (ix_tracking_events_supporter_id) or by delivery (uq_tracking_events_once
leads with delivery_id), deliveries by (mailing_id, supporter_id) or by supporter.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, Select, exists, false, func, or_, select

from app.extensions import db
from app.mailings.models import Delivery, DeliveryStatus, Mailing, MailingStatus
from app.supporters.behaviours import register_behaviour
from app.supporters.models import Supporter
from app.tracking.models import EventKind, TrackingEvent

READ = (EventKind.OPEN, EventKind.CLICK)
# A mailing "went out" once its sending started; a cancelled one is left out of "the last N
# mailings", since most of its audience never got it.
WENT_OUT = (MailingStatus.SENDING, MailingStatus.PAUSED, MailingStatus.SENT)
MAILING_CHOICES_LIMIT = 200


def recent_mailings(count: int) -> Select:
    """Select the ids of the `count` mailings that went out most recently."""
    return (
        select(Mailing.id)
        .where(Mailing.status.in_(WENT_OUT))
        .order_by(func.coalesce(Mailing.started_at, Mailing.created_at).desc(), Mailing.id.desc())
        .limit(count)
    )


def mailing_choices(limit: int = MAILING_CHOICES_LIMIT) -> list[tuple[int, str]]:
    """Return (id, name) of the mailings that went out, newest first, for pickers."""
    rows = db.session.execute(
        select(Mailing.id, Mailing.name)
        .where(Mailing.status.in_(WENT_OUT))
        .order_by(func.coalesce(Mailing.started_at, Mailing.created_at).desc(), Mailing.id.desc())
        .limit(limit)
    )
    return [(row.id, row.name) for row in rows]


def _by_a_person(*kinds: EventKind) -> list[ColumnElement]:
    return [TrackingEvent.kind.in_(kinds), TrackingEvent.machine == false()]


def read_any_of_recent_mailings(params: dict) -> ColumnElement:
    """SQL: the supporter opened or clicked one of the last N mailings (a person did)."""
    return exists().where(
        TrackingEvent.supporter_id == Supporter.id,
        TrackingEvent.mailing_id.in_(recent_mailings(params["last_mailings"])),
        *_by_a_person(*READ),
    )


def clicked_any_of_recent_mailings(params: dict) -> ColumnElement:
    """SQL: the supporter clicked a link in one of the last N mailings (a person did)."""
    return exists().where(
        TrackingEvent.supporter_id == Supporter.id,
        TrackingEvent.mailing_id.in_(recent_mailings(params["last_mailings"])),
        *_by_a_person(EventKind.CLICK),
    )


def received_but_not_read(params: dict) -> ColumnElement:
    """SQL: the mailing was sent to the supporter and no person opened or clicked it."""
    # Naming the mailing as well lets PostgreSQL read only its events, from the index on
    # (mailing_id, kind, delivery_id) that carries the machine flag, not every mailing's.
    read = exists().where(
        TrackingEvent.mailing_id == params["mailing_id"],
        TrackingEvent.delivery_id == Delivery.id,
        *_by_a_person(*READ),
    )
    return exists().where(
        Delivery.mailing_id == params["mailing_id"],
        Delivery.supporter_id == Supporter.id,
        Delivery.status == DeliveryStatus.SENT,
        ~read,
    )


def received_mail_since(cutoff: datetime) -> ColumnElement:
    """SQL: some mailing was sent to the supporter at or after `cutoff`."""
    # Only mailings still sending at the cutoff can have sent then: naming them lets the
    # deliveries of older mailings be skipped by the (mailing_id, …) indexes, unread.
    still_sending = select(Mailing.id).where(
        or_(Mailing.finished_at.is_(None), Mailing.finished_at >= cutoff)
    )
    return exists().where(
        Delivery.supporter_id == Supporter.id,
        Delivery.mailing_id.in_(still_sending),
        Delivery.status == DeliveryStatus.SENT,
        Delivery.sent_at >= cutoff,
    )


def read_mail_since(cutoff: datetime) -> ColumnElement:
    """SQL: a person opened or clicked a mailing of the supporter's at or after `cutoff`."""
    return exists().where(
        TrackingEvent.supporter_id == Supporter.id,
        TrackingEvent.occurred_at >= cutoff,
        *_by_a_person(*READ),
    )


def check_mailing(params: dict) -> dict[str, list[str]]:
    """Return the problem with the condition's mailing id, by parameter, or nothing."""
    if db.session.get(Mailing, params["mailing_id"]) is None:
        return {"mailing_id": [f"No mailing with id {params['mailing_id']}."]}
    return {}


def _nothing_to_check(params: dict) -> dict[str, list[str]]:
    return {}


def register_tracking_behaviours() -> None:
    """Offer the mailing conditions to the segment engine (create_app calls this once)."""
    register_behaviour(
        "opened_recent_mailings",
        read_any_of_recent_mailings,
        _nothing_to_check,
        label="Opened any of the last N mailings",
        params=("last_mailings",),
    )
    register_behaviour(
        "clicked_recent_mailings",
        clicked_any_of_recent_mailings,
        _nothing_to_check,
        label="Clicked in any of the last N mailings",
        params=("last_mailings",),
    )
    register_behaviour(
        "received_not_opened",
        received_but_not_read,
        check_mailing,
        label="Was sent a mailing but did not open it",
        params=("mailing_id",),
    )
