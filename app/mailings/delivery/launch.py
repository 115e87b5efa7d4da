"""Freeze a mailing once and snapshot its audience into deliveries: what "send" does first."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, insert, literal, select, text, update

from app.config import Settings
from app.db import dialect_name, utcnow
from app.errors import Conflict
from app.extensions import db
from app.jobs import START_MAILING, enqueue
from app.mailings.abtest.assignment import freeze_variants, is_ab_tested, snapshot_split
from app.mailings.compose.rendering import freeze_sources, sources_of
from app.mailings.delivery.campaign_gate import CampaignGate, linked_campaign
from app.mailings.delivery.fanout import enqueue_send_batches
from app.mailings.models import Delivery, Mailing, MailingLink, MailingStatus
from app.supporters.models import CustomField
from app.supporters.segments import audience_query


class SendError(Conflict, ValueError):
    """The mailing cannot be sent as it is; the message says why."""


class CampaignNotOpen(SendError):
    """The linked campaign's action page would answer "not found" or "closed" to everyone."""

    code = "campaign_not_open"


def campaign_refusal(campaign_id: int | None, campaign: CampaignGate | None) -> str | None:
    """Say why mail linking to this campaign must not go out now, or None if it may.

    Every recipient's "Act now" link opens the campaign's action page, which shows "not
    found" while the campaign is a draft (or deleted) and "closed" once it has closed or
    passed its deadline: a send then would reach everyone with a dead link.
    """
    if campaign_id is None:
        return None
    if campaign is None:
        return (
            f"Campaign {campaign_id} no longer exists: link the mailing to an open campaign "
            'or unlink it ({"campaign_id": null}) before sending.'
        )
    if campaign.is_open:
        return None
    title = campaign.title if len(campaign.title) <= 60 else campaign.title[:59] + "…"
    named = f'Campaign {campaign.id} "{title}"'
    reopen = f'PATCH /api/v1/campaigns/{campaign.id} {{"status": "open"}}'
    if campaign.status == "draft":
        return f"{named} is a draft: open it before sending ({reopen})."
    if campaign.status == "closed":
        return f"{named} is closed: reopen it ({reopen}) or link the mailing to an open campaign."
    return (
        f"{named} passed its deadline ({campaign.deadline:%Y-%m-%d %H:%M} UTC): move the "
        f'deadline (PATCH /api/v1/campaigns/{campaign.id} {{"deadline": …}}) or link the '
        "mailing to an open campaign."
    )


def check_campaign_open(mailing: Mailing) -> None:
    """Raise CampaignNotOpen if the mailing links to a campaign that is not open."""
    campaign = linked_campaign(mailing.campaign_id)
    refusal = campaign_refusal(mailing.campaign_id, campaign)
    if refusal:
        # "closed" also for an open campaign past its deadline: the page says closed.
        status = "deleted" if campaign is None else campaign.status
        status = "closed" if status == "open" else status
        raise CampaignNotOpen(
            refusal, {"campaign_id": mailing.campaign_id, "campaign_status": status}
        )


def hold_unless_campaign_open(mailing_id: int) -> bool:
    """Pause a scheduled mailing whose campaign is not open, saying why; the caller commits.

    Returns True if it paused it. Staff see the reason in the mailing's status and resume it
    once the campaign is open again.
    """
    mailing = db.session.get(Mailing, mailing_id)
    if mailing is None or mailing.status != MailingStatus.SCHEDULED:
        return False
    refusal = campaign_refusal(mailing.campaign_id, linked_campaign(mailing.campaign_id))
    if refusal is None:
        return False
    paused = db.session.execute(
        update(Mailing)
        .where(Mailing.id == mailing_id, Mailing.status == MailingStatus.SCHEDULED)
        .values(
            status=MailingStatus.PAUSED,
            status_reason=f"Not started: {refusal} Then resume the mailing.",
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.expire(mailing)
    return bool(paused)


def known_custom_fields() -> set[str]:
    return set(db.session.scalars(select(CustomField.name)))


def hold_scheduled_mailings_of(campaign_id: int) -> list[int]:
    """Pause the scheduled mailings linking to a campaign that is not open; return their ids.

    Called when staff close a campaign or set it back to draft, so the mailings that would
    have sent dead links say so at once instead of failing silently at their start time.
    """
    campaign = linked_campaign(campaign_id)
    if campaign is not None and campaign.is_open:
        return []
    scheduled = db.session.scalars(
        select(Mailing.id).where(
            Mailing.campaign_id == campaign_id, Mailing.status == MailingStatus.SCHEDULED
        )
    ).all()
    return [mailing_id for mailing_id in scheduled if hold_unless_campaign_open(mailing_id)]


def freeze_mailing(mailing: Mailing, settings: Settings) -> None:
    """Render MJML → HTML → inlined CSS and the text part once, number the links, store them.

    An A/B-tested mailing's variants are frozen with it.
    """
    options = {
        "organisation_name": settings.organisation_name,
        "postal_address": settings.postal_address,
        "custom_fields": known_custom_fields(),
    }
    frozen = freeze_sources(sources_of(mailing), **options)
    mailing.frozen_subject = frozen.subject_source
    mailing.frozen_html = frozen.html_source
    mailing.frozen_text = frozen.text_source
    mailing.frozen_at = utcnow()
    mailing.links = [
        MailingLink(position=link.position, url=link.url, is_honeypot=link.is_honeypot)
        for link in frozen.links
    ]
    if is_ab_tested(mailing):
        freeze_variants(mailing, options)


def audience_of(mailing: Mailing, *, mailable_only: bool = True):
    audience = mailing.audience or {}
    return audience_query(
        mailable_only=mailable_only,
        include_lists=audience.get("include_lists", ()),
        exclude_lists=audience.get("exclude_lists", ()),
        include_tags=audience.get("include_tags", ()),
        exclude_tags=audience.get("exclude_tags", ()),
        segment_ids=audience.get("segments", ()),
        exclude_segment_ids=audience.get("exclude_segments", ()),
    )


def snapshot_audience(mailing: Mailing, batch_size: int) -> int:
    """Create one queued delivery per subscribed supporter in the audience, in one statement.

    Batch numbers are assigned in supporter-id order so each batch job reads a contiguous,
    indexed range. Returns the number of deliveries created. An A/B test splits the audience
    into its test portion and the rest (app/mailings/abtest/assignment.py).
    """
    lock_out_erasures(db.session)
    audience = audience_of(mailing).subquery()
    if is_ab_tested(mailing):
        return snapshot_split(mailing, audience, batch_size)
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


def lock_out_erasures(session) -> None:
    """Make an erasure wait for this snapshot, or this snapshot for an erasure under way.

    Deliveries have no foreign key to supporters; the trigger that unlinks an erased supporter's
    deliveries takes the same lock exclusively (migration 0018), so it also finds the rows of
    a snapshot that read the person before they went. Runs before the snapshot's INSERT, whose
    own view of the supporters then starts after any erasure it waited for.
    """
    if dialect_name(session) == "postgresql":
        session.execute(select(func.deliveries_snapshot_lock()))


def request_send(mailing: Mailing, settings: Settings, *, at: datetime | None = None) -> None:
    """Freeze a draft and schedule its start (now or at `at`); the caller commits.

    Freezing here, not in the worker, means a template that cannot render is refused at once
    with its errors instead of failing later in the background.
    """
    if mailing.status != MailingStatus.DRAFT:
        raise SendError(f"Only a draft can be sent; this mailing is {mailing.status.value}.")
    check_campaign_open(mailing)
    freeze_mailing(mailing, settings)
    mailing.status = MailingStatus.SCHEDULED
    mailing.scheduled_at = at or utcnow()
    mailing.status_reason = None
    db.session.flush()
    # A later start goes to RQ's scheduler (run inside every `clarion worker`), which moves the
    # job onto the queue at `at`; the clock starts the mailing anyway if Redis lost the job.
    later = at if at is not None and at > utcnow() else None
    enqueue(START_MAILING, settings, mailing.id, after_commit_of=db.session, at=later)


def start_mailing(mailing_id: int, settings: Settings) -> bool:
    """Snapshot the audience and move a due scheduled mailing to sending; commit.

    Safe to run twice or concurrently: only the call that flips the status does the work.
    A mailing whose campaign closed since it was scheduled is paused instead, with the reason.
    """
    if hold_unless_campaign_open(mailing_id):
        db.session.commit()
        return False
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
    # An A/B test sends its test portion now; the rest waits, held, for the winner.
    first_batches = mailing.ab_test.test_batch_count if is_ab_tested(mailing) else None
    enqueue_send_batches(
        settings,
        mailing,
        range(mailing.batch_count if first_batches is None else first_batches),
        generation=0,
    )
    return True
