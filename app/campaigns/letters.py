"""Send supporters' letters to campaign targets, a capped number per target per hour.

A letter goes From the organisation's own address with "Jane Doe via Org" as display name
(sending as the supporter's address would be spoofing, and fail DMARC), with Reply-To the
supporter so the official's answer reaches them.

The database is the source of truth, as it is for mailings: a queued letter's
`next_attempt_at` says when it is next due. A letter beyond its target's hourly cap, or whose
send failed for a reason that may pass, stays queued with a later `next_attempt_at`; the
clock (`redrive_due_letters`) enqueues every due letter whose job Redis does not hold, so
neither a Redis outage at commit time nor a lost scheduled job strands a letter.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parseaddr

from sqlalchemy import func, select

from app.campaigns.letter_text import letter_for_target, supporter_town
from app.campaigns.models import Action, Campaign, CampaignTarget, Letter, LetterStatus
from app.config import Settings
from app.db import utcnow
from app.extensions import db
from app.jobs import SEND_LETTER, enqueue, without_live_job
from app.supporters.csvcells import spreadsheet_safe
from app.supporters.models import Supporter
from mailers.plain import build_plain_message
from mailers.transport import LocalError, PermanentFailure, SmtpTransport, TemporaryFailure

log = logging.getLogger(__name__)

# A job the clock enqueued but that never finished the letter is tried again this much later.
REDRIVE_AFTER = timedelta(minutes=10)
MAX_RETRY_DELAY = timedelta(hours=6)
REDRIVE_BATCH = 500


def hourly_cap(settings: Settings) -> int:
    return settings.letters_per_target_per_hour


def queue_letter(letter_id: int, settings: Settings) -> None:
    """Mark the letter due now and send it from a worker once this transaction commits."""
    letter = db.session.get(Letter, letter_id)
    letter.next_attempt_at = utcnow()
    enqueue(SEND_LETTER, settings, letter_id, after_commit_of=db.session)


def redrive_due_letters(settings: Settings, now=None) -> int:
    """Enqueue every queued letter that is due and has no live job; return how many.

    A duplicate job (the after-commit enqueue racing this) is harmless: deliver_letter locks
    the row and does nothing for a letter that is no longer queued.
    """
    now = now or utcnow()
    due = db.session.scalars(
        select(Letter)
        .where(
            Letter.status == LetterStatus.QUEUED,
            func.coalesce(Letter.next_attempt_at, Letter.created_at) <= now,
        )
        .order_by(Letter.next_attempt_at)
        .limit(REDRIVE_BATCH)
        .with_for_update(skip_locked=True)
    ).all()
    redriven = without_live_job(SEND_LETTER, settings, due)
    for letter in redriven:
        # Due again later only if this job never gets the letter out of `queued`.
        letter.next_attempt_at = now + REDRIVE_AFTER
        enqueue(SEND_LETTER, settings, letter.id)
    if redriven:
        log.info("letters: re-enqueued %d due letters", len(redriven))
    return len(redriven)


@dataclass
class LetterOutcome:
    status: str  # sent, failed, wait (hourly cap), deferred (retry later), done (nothing to do)
    wait_seconds: int = 0


def envelope_sender(settings: Settings) -> str:
    return parseaddr(settings.mail_from)[1]


def build_letter_message(letter: Letter, settings: Settings) -> tuple[bytes, str]:
    """Return the plain-text letter from the organisation on behalf of the supporter, and its id."""
    action: Action = letter.action
    campaign = db.session.get(Campaign, action.campaign_id)
    supporter = db.session.get(Supporter, action.supporter_id) if action.supporter_id else None
    sender = envelope_sender(settings)
    name = (supporter.full_name if supporter else "") or "A supporter"
    return build_plain_message(
        sender=sender,
        to=letter.target.email,
        subject=action.letter_subject or campaign.title,
        body=letter_for_target(action, campaign, letter.target),
        from_name=f"{name} via {settings.organisation_name}",
        reply_to=supporter.email if supporter is not None else None,
        reply_to_name=name if supporter is not None else None,
        message_id_domain=sender.rpartition("@")[2] or "localhost",
    )


def retry_delay(attempts: int, settings: Settings) -> timedelta:
    """Exponential backoff from the send retry base, at most MAX_RETRY_DELAY."""
    delay = timedelta(seconds=settings.retry_base_seconds * 2 ** max(attempts - 1, 0))
    return min(delay, MAX_RETRY_DELAY)


def deliver_letter(
    letter_id: int, settings: Settings, *, cap: int | None = None, transport=None
) -> LetterOutcome:
    """Send one queued letter unless its target had `cap` letters in the last hour.

    The target row is locked while we count and send, so two workers cannot both slip past the
    cap. Every outcome is recorded on the letter and committed: a recipient refusal fails it;
    a temporary failure, or a protocol error on our side, keeps it queued with an error and a
    later `next_attempt_at`; the cap keeps it queued until the target's hour has room.
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
        wait = max(int((window[1] + timedelta(hours=1) - now).total_seconds()) + 1, 1)
        letter.next_attempt_at = now + timedelta(seconds=wait)
        db.session.commit()
        return LetterOutcome("wait", wait)
    if not letter.target.email:
        letter.status, letter.next_attempt_at = LetterStatus.HELD, None
        db.session.commit()
        return LetterOutcome("done")
    try:
        data, message_id = build_letter_message(letter, settings)
    except ValueError as exc:  # an address no mail can carry: staff must fix the target
        letter.status, letter.next_attempt_at = LetterStatus.FAILED, None
        letter.error = f"cannot build the letter: {exc}"[:2000]
        db.session.commit()
        return LetterOutcome("failed")
    letter.attempts += 1
    own = transport is None
    transport = transport or SmtpTransport(settings.smtp)
    try:
        transport.send(envelope_sender(settings), letter.target.email, data)
    except PermanentFailure as exc:
        letter.status, letter.error = LetterStatus.FAILED, str(exc)[:2000]
        letter.next_attempt_at = None
        db.session.commit()
        return LetterOutcome("failed")
    except TemporaryFailure as exc:
        return _defer(letter, exc, settings, now)
    finally:
        if own:
            transport.close()
    letter.status, letter.sent_at, letter.next_attempt_at = LetterStatus.SENT, now, None
    letter.message_id, letter.error = message_id, None
    db.session.commit()
    return LetterOutcome("sent")


def _defer(letter: Letter, exc: TemporaryFailure, settings: Settings, now) -> LetterOutcome:
    """Keep the letter queued with its error, due again after a backoff."""
    if isinstance(exc, LocalError):
        # Our own fault (what we sent, or our sender): never the target's bounce. Loud, since
        # only a fix on our side helps; the letter waits and is retried, never failed for it.
        log.error("letter %s: SMTP protocol error on our side: %s", letter.id, exc)
        letter.error = f"local error, will retry: {exc}"[:2000]
    elif letter.attempts >= settings.max_send_attempts:
        letter.status, letter.next_attempt_at = LetterStatus.FAILED, None
        letter.error = f"gave up after {letter.attempts} attempts: {exc}"[:2000]
        db.session.commit()
        return LetterOutcome("failed")
    else:
        log.warning("letter %s: temporary failure: %s", letter.id, exc)
        letter.error = f"temporary failure, will retry: {exc}"[:2000]
    delay = retry_delay(letter.attempts, settings)
    letter.next_attempt_at = now + delay
    db.session.commit()
    return LetterOutcome("deferred", int(delay.total_seconds()))


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
    campaign_id: int,
    *,
    status: LetterStatus | None = None,
    target_id: int | None = None,
    after: int | None = None,
    limit: int | None = None,
):
    """Yield (letter, action, target, supporter) for the campaign, oldest first.

    `after` and `limit` page by letter id (keyset): a page stays cheap however many there are.
    """
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
    if after is not None:
        stmt = stmt.where(Letter.id > after)
    if limit is not None:
        stmt = stmt.limit(limit)
    yield from db.session.execute(stmt)


def letters_csv(campaign_id: int) -> str:
    """Return every letter of the campaign as CSV, for printing and posting the held ones."""
    campaign = db.session.get(Campaign, campaign_id)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for letter, action, target, supporter in letter_rows(campaign_id):
        writer.writerow(
            # Supporters write these cells: keep spreadsheets from running them as formulas.
            spreadsheet_safe("" if v is None else str(v))
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
