"""Send one batch of a mailing: claim rows with a lease, build, send over one SMTP connection,
record each acceptance.

Exactly-once bound: a row is marked `sent` (with its Message-ID) in groups of at most
`settings.record_every` messages, or every 0.2 s, right after the SMTP server accepted them.
A worker killed at the worst moment leaves at most that many accepted-but-unrecorded rows;
their lease runs out and they are sent again. Nothing can be lost: a row only leaves
`sending` when it is recorded sent, failed, deferred or released.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from sqlalchemy import exists, select, text, update

from app.config import Settings
from app.db import utcnow
from app.extensions import db
from app.links.tokens import TokenService
from app.mailings.abtest.assignment import is_ab_tested
from app.mailings.compose.recipients import factories, sender_of
from app.mailings.compose.rendering import Mode, Person, recipient_in, supporter_fields
from app.mailings.delivery.building import BuildAhead, BuildInline
from app.mailings.delivery.outcomes import (
    UNSETTLED_STATUSES,
    BatchResult,
    count_outcomes,
    defer,
    fail_permanently,
    fail_unbuildable,
    settle_outcome_counts,
)
from app.mailings.delivery.throttle import ConnectionSlots, RateLimiter
from app.mailings.models import (
    Delivery,
    DeliveryStatus,
    Mailing,
    MailingStatus,
    due_for_sending,
)
from app.queues import redis_connection, redis_key
from app.supporters.models import Supporter, may_be_mailed
from mailers.message import BuiltMessage, MessageFactory
from mailers.transport import PermanentFailure, SmtpTransport, TemporaryFailure

log = logging.getLogger(__name__)

PENDING_STATUSES = UNSETTLED_STATUSES
RECORD_INTERVAL = 0.2


def claim_rows(mailing_id: int, batch_no: int, lease_seconds: int) -> list[int]:
    """Lease the batch's sendable rows to this worker; return their ids (commits)."""
    now = utcnow()
    candidates = (
        select(Delivery.id)
        .where(
            Delivery.mailing_id == mailing_id,
            Delivery.batch_no == batch_no,
            due_for_sending(now),
        )
        .order_by(Delivery.id)
        # PostgreSQL: two jobs for the same batch split the rows instead of waiting on each
        # other. SQLite ignores it; its single writer lock already serialises the claim.
        .with_for_update(skip_locked=True)
    )
    ids = db.session.scalars(
        update(Delivery)
        .where(Delivery.id.in_(candidates.scalar_subquery()))
        .values(
            status=DeliveryStatus.SENDING,
            lease_until=now + timedelta(seconds=lease_seconds),
            attempts=Delivery.attempts + 1,
            last_error=None,
        )
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    ).all()
    db.session.commit()
    return sorted(ids)


# One statement per group of sent rows: record them, relax durability for this transaction
# only, and read the mailing's status (pause/cancel) — one round trip plus the commit.
_RECORD_SENT_PG = text(
    """
    WITH durability AS (SELECT set_config('synchronous_commit', 'off', true)),
    recorded AS (
        UPDATE deliveries
        SET status = 'sent', message_id = v.message_id, sent_at = v.sent_at, lease_until = NULL
        FROM unnest(CAST(:ids AS bigint[]), CAST(:message_ids AS text[]),
                    CAST(:sent_at AS timestamptz[])) AS v(id, message_id, sent_at)
        WHERE deliveries.id = v.id
        RETURNING 1
    )
    SELECT mailings.status FROM mailings, durability WHERE mailings.id = :mailing_id
    """
)


class _Recorder:
    """Record accepted messages in small groups, and look for pause/cancel while at it.

    Each group is one short transaction: the UPDATE of the sent rows plus a read of the
    mailing's status. On PostgreSQL it commits with synchronous_commit off: a crash of the
    database server (not of a worker) could lose the last fraction of a second of records,
    which would only re-send those few messages — the same bound as a killed worker.
    """

    def __init__(self, settings: Settings, mailing_id: int):
        self.settings = settings
        self.mailing_id = mailing_id
        self.accepted: list[dict] = []
        self.last_flush = time.monotonic()
        self.postgres = db.session.get_bind().dialect.name == "postgresql"

    def accept(self, delivery_id: int, message_id: str) -> str | None:
        """Note an accepted message; return why to stop if the mailing stopped sending."""
        self.accepted.append({"id": delivery_id, "message_id": message_id, "sent_at": utcnow()})
        if (
            len(self.accepted) >= self.settings.record_every
            or time.monotonic() - self.last_flush >= RECORD_INTERVAL
        ):
            return self.flush()
        return None

    def flush(self) -> str | None:
        """Write the accepted rows; return why to stop if the mailing is no longer sending."""
        if self.postgres:
            status = db.session.execute(
                _RECORD_SENT_PG,
                {
                    "ids": [row["id"] for row in self.accepted],
                    "message_ids": [row["message_id"] for row in self.accepted],
                    "sent_at": [row["sent_at"] for row in self.accepted],
                    "mailing_id": self.mailing_id,
                },
            ).scalar_one()
            status = MailingStatus(status)
        else:
            if self.accepted:
                db.session.execute(
                    update(Delivery).execution_options(synchronize_session=False),
                    [
                        dict(row, status=DeliveryStatus.SENT, lease_until=None)
                        for row in self.accepted
                    ],
                )
            status = db.session.scalar(select(Mailing.status).where(Mailing.id == self.mailing_id))
        db.session.commit()
        self.accepted = []
        self.last_flush = time.monotonic()
        return None if status == MailingStatus.SENDING else f"mailing is {status.value}"


def send_batch(mailing_id: int, batch_no: int, settings: Settings) -> BatchResult:
    """Send every sendable row of one batch; safe to run again at any time."""
    result = BatchResult()
    mailing = db.session.get(Mailing, mailing_id)
    if mailing is None or mailing.status != MailingStatus.SENDING:
        result.stopped_because = "mailing is not sending"
        return result
    # Everything the loop needs from the mailing, read once: ORM objects expire at each commit.
    builders = _builders(mailing, settings)
    _, envelope_from = sender_of(mailing, settings)
    send_rate = mailing.send_rate
    ids = claim_rows(mailing_id, batch_no, settings.lease_seconds)
    result.claimed = len(ids)
    addressees = _load_sendable(ids, result, builders) if ids else {}
    remaining = [i for i in ids if i in addressees]
    if not remaining:
        finish_if_complete(mailing_id)
        db.session.commit()
        return result

    redis = redis_connection(settings.redis_url)
    limiter = RateLimiter(
        redis,
        [
            (redis_key(settings, "rate", "mailing", mailing_id), send_rate or 0),
            (redis_key(settings, "rate", "smtp"), settings.smtp_max_rate),
        ],
    )
    slots = ConnectionSlots(redis, redis_key(settings, "smtp-slots"), settings.smtp_max_connections)
    if not slots.acquire(timeout=30):
        _release(remaining, result)
        result.stopped_because = "no SMTP connection slot free"
        return result

    tokens = TokenService(settings.secret_keys)
    recorder = _Recorder(settings, mailing_id)
    lease_renewed = time.monotonic()

    def build(delivery_id: int) -> BuiltMessage:
        person, factory = addressees[delivery_id]
        return factory.build(recipient_in(Mode.SEND, mailing_id, person, settings, tokens))

    signs = any(factory.signs for factory in builders.values())
    ahead = BuildAhead(build) if signs else BuildInline(build)
    try:
        with SmtpTransport(settings.smtp) as transport:
            while remaining:
                delivery_id = remaining[0]
                if time.monotonic() - lease_renewed > settings.lease_seconds / 3:
                    result.stopped_because = recorder.flush()
                    if result.stopped_because:
                        break
                    _renew_lease(remaining, settings.lease_seconds)
                    slots.acquire(timeout=0)
                    lease_renewed = time.monotonic()
                limiter.wait_for_slot()
                person, _ = addressees[delivery_id]
                try:
                    built = ahead.built(delivery_id, remaining)
                    transport.send(envelope_from, person.email, built.data)
                except TemporaryFailure as exc:
                    recorder.flush()
                    if exc.code is None:  # the server is unreachable: stop, retry the rest later
                        defer(remaining, exc, settings, result)
                        remaining = []
                        result.stopped_because = f"SMTP unavailable: {exc}"
                        break
                    defer([delivery_id], exc, settings, result)
                except PermanentFailure as exc:
                    recorder.flush()
                    fail_permanently(delivery_id, exc, settings, result)
                except ValueError as exc:  # InvalidAddress and other values no mail can carry
                    recorder.flush()
                    fail_unbuildable(delivery_id, exc, result)
                else:
                    remaining.pop(0)
                    result.sent += 1
                    result.stopped_because = recorder.accept(delivery_id, built.message_id)
                    if result.stopped_because:
                        break
                    continue
                remaining.pop(0)
            recorder.flush()
    finally:
        ahead.close()
        slots.release()
    if remaining:
        _release(remaining, result)
    count_outcomes(settings, mailing_id, result)
    finish_if_complete(mailing_id)
    db.session.commit()
    return result


def _builders(mailing: Mailing, settings: Settings) -> dict[int | None, MessageFactory]:
    """The message builder for each variant a row may carry (None: no variant).

    A mailing without an A/B test has one. In an A/B test the rows without a variant are the
    rest of the audience, sent the winner once it is picked; a stopped variant has none, so
    its rows go back to wait for the winner (see _load_sendable).
    """
    if not is_ab_tested(mailing):
        return {None: factories.get(mailing, settings)}
    builders = {
        variant.id: factories.get(mailing, settings, variant)
        for variant in mailing.variants
        if variant.stopped_at is None
    }
    winner = mailing.ab_test.winner
    if winner is not None:
        builders[None] = factories.get(mailing, settings, winner)
    return builders


def _load_sendable(
    ids: list[int], result: BatchResult, builders: dict[int | None, MessageFactory]
) -> dict[int, tuple[Person, MessageFactory]]:
    """Re-check suppression now: an unsubscribe since the snapshot stops this batch's mail.

    Rows of a variant the A/B test's circuit breaker stopped are held again, without their
    variant, to get the winner.
    """
    rows = db.session.execute(
        select(
            Delivery.id.label("delivery_id"),
            Delivery.variant_id,
            Supporter.id.label("supporter_id"),
            may_be_mailed().label("may_be_mailed"),
            Supporter.email,
            Supporter.first_name,
            Supporter.last_name,
            Supporter.postcode,
            Supporter.country,
            Supporter.language,
            Supporter.custom_fields,
        )
        .join(Supporter, Supporter.id == Delivery.supporter_id, isouter=True)
        .where(Delivery.id.in_(ids))
    ).all()
    sendable = {
        # The row has a supporter's attributes, which is all supporter_fields reads.
        row.delivery_id: (
            Person(row.supporter_id, row.email, supporter_fields(row)),
            builders[row.variant_id],
        )
        for row in rows
        if row.may_be_mailed and row.variant_id in builders
    }
    held = {
        row.delivery_id for row in rows if row.may_be_mailed and row.delivery_id not in sendable
    }
    if held:
        db.session.execute(
            update(Delivery)
            .where(Delivery.id.in_(sorted(held)))
            .values(status=DeliveryStatus.HELD, variant_id=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        result.released += len(held)
    suppressed = [
        delivery_id
        for delivery_id, *_ in rows
        if delivery_id not in sendable and delivery_id not in held
    ]
    if suppressed:
        db.session.execute(
            update(Delivery)
            .where(Delivery.id.in_(suppressed))
            .values(status=DeliveryStatus.SUPPRESSED, lease_until=None)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        result.suppressed += len(suppressed)
    return sendable


def _renew_lease(ids: list[int], lease_seconds: int) -> None:
    db.session.execute(
        update(Delivery)
        .where(Delivery.id.in_(ids), Delivery.status == DeliveryStatus.SENDING)
        .values(lease_until=utcnow() + timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _release(ids: list[int], result: BatchResult) -> None:
    """Hand unsent rows back: queued again, or cancelled if the mailing was cancelled."""
    mailing_status = db.session.scalar(
        select(Mailing.status)
        .join(Delivery, Delivery.mailing_id == Mailing.id)
        .where(Delivery.id == ids[0])
    )
    status = (
        DeliveryStatus.CANCELLED
        if mailing_status == MailingStatus.CANCELLED
        else DeliveryStatus.QUEUED
    )
    db.session.execute(
        update(Delivery)
        .where(Delivery.id.in_(ids), Delivery.status == DeliveryStatus.SENDING)
        .values(status=status, lease_until=None, attempts=Delivery.attempts - 1)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    result.released += len(ids)


def finish_if_complete(mailing_id: int) -> bool:
    """Mark a sending mailing sent once no delivery is left to send (the caller commits)."""
    pending = exists().where(
        Delivery.mailing_id == mailing_id, Delivery.status.in_(PENDING_STATUSES)
    )
    finished = bool(
        db.session.execute(
            update(Mailing)
            .where(Mailing.id == mailing_id, Mailing.status == MailingStatus.SENDING, ~pending)
            .values(status=MailingStatus.SENT, finished_at=utcnow())
            .execution_options(synchronize_session=False)
        ).rowcount
    )
    if finished:
        # No delivery's status moves again: reports read these instead of counting rows.
        settle_outcome_counts(mailing_id)
    return finished
