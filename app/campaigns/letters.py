"""Send supporters' letters to campaign targets, a capped number per target per hour.

A letter goes From the organisation's own address with "Jane Doe via Org" as display name
(sending as the supporter's address would be spoofing, and fail DMARC), with Reply-To the
supporter so the official's answer reaches them. Letters beyond a target's hourly cap are not
dropped: the job reports how long to wait and re-schedules itself.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr

from sqlalchemy import func, select

from app.campaigns.models import Action, Campaign, CampaignTarget, Letter, LetterStatus
from app.campaigns.services import letter_for_target
from app.config import Settings
from app.db import utcnow
from app.extensions import db
from app.queues import QueueName, enqueue_after_commit, get_queue
from app.supporters.models import Supporter
from mailers.transport import PermanentFailure, SmtpTransport

JOB = "workers.letters.send_letter"
JOB_OPTIONS = {"job_timeout": 120, "result_ttl": 600, "failure_ttl": 7 * 24 * 3600}


def hourly_cap(settings: Settings) -> int:
    return settings.letters_per_target_per_hour


def queue_letter(letter_id: int, settings: Settings) -> None:
    """Send the letter from a worker once this transaction commits."""
    from rq import Retry

    enqueue_after_commit(
        db.session,
        settings,
        QueueName.DEFAULT,
        JOB,
        letter_id,
        job_id=f"letter-{letter_id}",
        retry=Retry(max=5, interval=[30, 120, 600, 1800, 3600]),
        **JOB_OPTIONS,
    )


@dataclass
class LetterOutcome:
    status: str  # sent, failed, wait, done (nothing to do)
    wait_seconds: int = 0


def build_letter_message(letter: Letter, settings: Settings) -> EmailMessage:
    """Return the plain-text letter from the organisation, on behalf of the supporter."""
    action: Action = letter.action
    campaign = db.session.get(Campaign, action.campaign_id)
    supporter = db.session.get(Supporter, action.supporter_id) if action.supporter_id else None
    _, sender = parseaddr(settings.mail_from)
    domain = sender.rpartition("@")[2] or "localhost"
    name = (supporter.full_name if supporter else "") or "A supporter"
    message = EmailMessage()
    message["From"] = str(Address(f"{name} via {settings.organisation_name}", addr_spec=sender))
    message["To"] = letter.target.email
    if supporter is not None:
        message["Reply-To"] = str(Address(name, addr_spec=supporter.email))
    message["Subject"] = action.letter_subject or campaign.title
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = make_msgid(f"letter.{letter.id}", domain=domain)
    message.set_content(letter_for_target(action, campaign, letter.target))
    return message


def deliver_letter(
    letter_id: int, settings: Settings, *, cap: int | None = None, transport=None
) -> LetterOutcome:
    """Send one queued letter unless its target had `cap` letters in the last hour.

    The target row is locked while we count and send, so two workers cannot both slip past the
    cap. Temporary SMTP failures raise (RQ retries); permanent ones mark the letter failed.
    """
    cap = hourly_cap(settings) if cap is None else cap
    letter = db.session.scalar(select(Letter).where(Letter.id == letter_id).with_for_update())
    if letter is None or letter.status != LetterStatus.QUEUED:
        return LetterOutcome("done")
    db.session.scalar(
        select(CampaignTarget.id).where(CampaignTarget.id == letter.target_id).with_for_update()
    )
    now = utcnow()
    window = db.session.execute(
        select(func.count(), func.min(Letter.sent_at)).where(
            Letter.target_id == letter.target_id,
            Letter.status == LetterStatus.SENT,
            Letter.sent_at > now - timedelta(hours=1),
        )
    ).one()
    if window[0] >= cap:
        wait = int((window[1] + timedelta(hours=1) - now).total_seconds()) + 1
        db.session.rollback()
        return LetterOutcome("wait", max(wait, 1))
    if not letter.target.email:
        letter.status = LetterStatus.HELD
        db.session.commit()
        return LetterOutcome("done")
    message = build_letter_message(letter, settings)
    letter.attempts += 1
    own = transport is None
    transport = transport or SmtpTransport(settings.smtp)
    _, sender = parseaddr(settings.mail_from)
    try:
        transport.send(sender, letter.target.email, message.as_bytes())
    except PermanentFailure as exc:
        letter.status, letter.error = LetterStatus.FAILED, str(exc)[:2000]
        db.session.commit()
        return LetterOutcome("failed")
    finally:
        if own:
            transport.close()
    letter.status, letter.sent_at = LetterStatus.SENT, now
    letter.message_id, letter.error = message["Message-ID"], None
    db.session.commit()
    return LetterOutcome("sent")


def send_or_reschedule(
    letter_id: int, settings: Settings, *, cap: int | None = None
) -> LetterOutcome:
    """Deliver the letter, or schedule this job again for when the target's hour has room."""
    outcome = deliver_letter(letter_id, settings, cap=cap)
    if outcome.status == "wait":
        get_queue(settings, QueueName.DEFAULT).enqueue_in(
            timedelta(seconds=outcome.wait_seconds), JOB, letter_id, **JOB_OPTIONS
        )
    return outcome


CSV_COLUMNS = (
    "letter_id",
    "status",
    "target_name",
    "target_title",
    "target_organisation",
    "postal_address",
    "target_email",
    "supporter_name",
    "supporter_town",
    "subject",
    "letter",
    "created_at",
    "sent_at",
)


def letter_rows(
    campaign_id: int, *, status: LetterStatus | None = None, target_id: int | None = None
):
    """Yield (letter, action, target, supporter) for the campaign, oldest first."""
    stmt = (
        select(Letter, Action, CampaignTarget, Supporter)
        .join(Action, Letter.action_id == Action.id)
        .join(CampaignTarget, Letter.target_id == CampaignTarget.id)
        .outerjoin(Supporter, Action.supporter_id == Supporter.id)
        .where(Action.campaign_id == campaign_id)
        .order_by(Letter.id)
    )
    if status is not None:
        stmt = stmt.where(Letter.status == status)
    if target_id is not None:
        stmt = stmt.where(Letter.target_id == target_id)
    yield from db.session.execute(stmt)


def letters_csv(campaign_id: int) -> str:
    """Return every letter of the campaign as CSV, for printing and posting the held ones."""
    from app.campaigns.services import supporter_town

    campaign = db.session.get(Campaign, campaign_id)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for letter, action, target, supporter in letter_rows(campaign_id):
        writer.writerow(
            _safe(v)
            for v in (
                letter.id,
                letter.status.value,
                target.name,
                target.title,
                target.organisation,
                target.postal_address,
                target.email,
                supporter.full_name if supporter else "",
                supporter_town(supporter),
                action.letter_subject or campaign.title,
                letter_for_target(action, campaign, target),
                letter.created_at.isoformat(),
                letter.sent_at.isoformat() if letter.sent_at else "",
            )
        )
    return out.getvalue()


def _safe(value) -> str:
    # Supporters write these cells: keep spreadsheets from running them as formulas.
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
