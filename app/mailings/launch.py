"""Freeze a mailing once and snapshot its audience into deliveries: what "send" does first."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, insert, literal, select, text, update

from app.config import Settings
from app.db import utcnow
from app.extensions import db
from app.mailings.models import Delivery, Mailing, MailingLink, MailingStatus
from app.mailings.recipients import TEMPLATES_DIR
from app.queues import QueueName, call_after_commit, enqueue_after_commit, get_queue
from app.supporters.models import CustomField
from app.supporters.segments import audience_query
from mailers.merge import allowed_fields
from mailers.render import freeze


class SendError(ValueError):
    """The mailing cannot be sent as it is; the message says why."""


def known_custom_fields() -> set[str]:
    return set(db.session.scalars(select(CustomField.name)))


def freeze_mailing(mailing: Mailing, settings: Settings) -> None:
    """Render MJML → HTML → inlined CSS and the text part once, and number the links."""
    frozen = freeze(
        mailing.subject,
        mailing.preheader,
        mailing.body_mjml,
        mailing.body_text,
        mailing.layout,
        organisation_name=settings.organisation_name,
        postal_address=settings.postal_address,
        templates_dir=TEMPLATES_DIR,
        allowed_fields=allowed_fields(known_custom_fields()),
    )
    mailing.frozen_subject = frozen.subject_source
    mailing.frozen_html = frozen.html_source
    mailing.frozen_text = frozen.text_source
    mailing.frozen_at = utcnow()
    mailing.links = [
        MailingLink(position=link.position, url=link.url, is_honeypot=link.is_honeypot)
        for link in frozen.links
    ]


def audience_of(mailing: Mailing):
    audience = mailing.audience or {}
    return audience_query(
        include_lists=audience.get("include_lists", ()),
        exclude_lists=audience.get("exclude_lists", ()),
        include_tags=audience.get("include_tags", ()),
        exclude_tags=audience.get("exclude_tags", ()),
        segment_ids=audience.get("segments", ()),
    )


def snapshot_audience(mailing: Mailing, batch_size: int) -> int:
    """Create one queued delivery per subscribed supporter in the audience, in one statement.

    Batch numbers are assigned in supporter-id order so each batch job reads a contiguous,
    indexed range. Returns the number of deliveries created.
    """
    audience = audience_of(mailing).subquery()
    numbered = select(
        literal(mailing.id).label("mailing_id"),
        audience.c.id.label("supporter_id"),
        # Integer division on both PostgreSQL and SQLite ("/" between integers).
        (
            (func.row_number().over(order_by=audience.c.id) - 1).self_group().op("/")(batch_size)
        ).label("batch_no"),
    )
    db.session.execute(
        insert(Delivery).from_select(["mailing_id", "supporter_id", "batch_no"], numbered)
    )
    total = db.session.scalar(
        select(func.count()).select_from(Delivery).where(Delivery.mailing_id == mailing.id)
    )
    mailing.total_recipients = total
    mailing.batch_count = -(-total // batch_size)
    return total


def request_send(mailing: Mailing, settings: Settings, *, at: datetime | None = None) -> None:
    """Freeze a draft and schedule its start (now or at `at`); the caller commits.

    Freezing here, not in the worker, means a template that cannot render is refused at once
    with its errors instead of failing later in the background.
    """
    if mailing.status != MailingStatus.DRAFT:
        raise SendError(f"Only a draft can be sent; this mailing is {mailing.status.value}.")
    freeze_mailing(mailing, settings)
    mailing.status = MailingStatus.SCHEDULED
    mailing.scheduled_at = at or utcnow()
    mailing.status_reason = None
    db.session.flush()
    if at is not None and at > utcnow():
        enqueue_after_commit_at(mailing.id, settings, at)
    else:
        enqueue_after_commit(
            db.session,
            settings,
            QueueName.SEND,
            "workers.jobs.start_mailing",
            mailing.id,
            job_id=f"start-{mailing.id}",
            job_timeout=1800,
        )


def enqueue_after_commit_at(mailing_id: int, settings: Settings, at: datetime) -> None:
    # RQ's scheduler (run inside every `clarion worker`) moves the job onto the queue at `at`;
    # the clock starts the mailing anyway if Redis lost the scheduled job.
    def schedule() -> None:
        get_queue(settings, QueueName.SEND).enqueue_at(
            at, "workers.jobs.start_mailing", mailing_id, job_id=f"start-{mailing_id}"
        )

    call_after_commit(db.session, schedule)


def start_mailing(mailing_id: int, settings: Settings) -> bool:
    """Snapshot the audience and move a due scheduled mailing to sending; commit.

    Safe to run twice or concurrently: only the call that flips the status does the work.
    """
    claimed = db.session.execute(
        update(Mailing)
        .where(
            Mailing.id == mailing_id,
            Mailing.status == MailingStatus.SCHEDULED,
            Mailing.scheduled_at <= utcnow(),
        )
        .values(status=MailingStatus.SENDING, started_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    if not claimed:
        db.session.rollback()
        return False
    mailing = db.session.get(Mailing, mailing_id)
    db.session.refresh(mailing)
    snapshot_audience(mailing, settings.batch_size)
    db.session.commit()
    if db.session.get_bind().dialect.name == "postgresql":
        # A fresh snapshot can add a million rows; without fresh statistics the planner
        # treats deliveries as tiny and scans it whole for every group of sent rows.
        db.session.execute(text("ANALYZE deliveries"))
        db.session.commit()
    from app.mailings.fanout import enqueue_batches

    enqueue_batches(settings, mailing.id, range(mailing.batch_count), generation=0)
    return True
