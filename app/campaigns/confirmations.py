"""Actions typed on a public form wait until the owner of the address confirms them.

Anyone can type anyone's address, so an action from /campaigns/<slug> or "Not Jane?" is held in
campaign_pending_actions and a link is mailed to that address. Only the POST behind that link
finds or creates the supporter and records the action with the letter held for it; until then
there is no supporter row, no action and no letter (so a flood never reaches a target's hourly
letter cap), and the real supporter is never told they "already acted". The typist always sees
the same "check your inbox" page, so the form never tells whether an address is known.

The confirmation link is signed for its own purpose (salt "clarion.confirm-action"), carries the
pending row's id only, expires after CONFIRM_MAX_AGE and works once.

The database says which mails are still owed (mail_sent_at, mail_failed_at); RQ's retries handle
temporary SMTP failures, and the clock (redrive_unsent_confirmations) enqueues again the mail of
a row whose job Redis lost, so a restart without persistence does not silently drop actions.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from email.utils import parseaddr

from rq.registry import FailedJobRegistry
from sqlalchemy import delete, func, select

from app.campaigns import letter_text, services
from app.campaigns.models import (
    Action,
    Campaign,
    CampaignKind,
    PendingAction,
    confirmation_mail_owed,
)
from app.config import Settings
from app.db import utcnow
from app.errors import DomainError
from app.extensions import db
from app.jobs import SEND_ACTION_CONFIRMATION, enqueue, queue_of, without_live_job
from app.links.tokens import ConfirmTokens, TokenError, TokenExpired
from app.supporters.models import Supporter
from app.supporters.services import find_by_email
from mailers.plain import build_plain_message
from mailers.transport import PermanentFailure, SmtpTransport

log = logging.getLogger(__name__)

CONFIRM_MAX_AGE = 7 * 24 * 3600
# The job queued with the held row has had this long to mail it (it normally takes seconds);
# a row still owed its mail after that, with no live job, lost it and is enqueued again.
REDRIVE_GRACE = timedelta(minutes=2)
REDRIVE_BATCH = 500
RQ_GAVE_UP = "RQ gave up on the job after its retries (kept in RQ's failed registry)"
# However often an address is typed, it gets at most this many confirmation mails a day: the
# form must not become a way to flood someone's inbox from our domain.
MAILS_PER_ADDRESS_PER_DAY = 3
BURST_WINDOW = timedelta(minutes=10)
BURST_PER_CLIENT = 5
BURST_PER_CAMPAIGN = 200
FLAG_CLIENT_BURST = "many from one network"
FLAG_CAMPAIGN_BURST = "many on this campaign"


def confirm_url(settings: Settings, pending_id: int) -> str:
    return f"{settings.base_url}/confirm/{ConfirmTokens(settings.secret_keys).dumps(pending_id)}"


def masked_email(email: str) -> str:
    """Return "j…@example.org": enough for the typist to spot a typo, not to read the address."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}…@{domain}"


def hold_action(
    campaign: Campaign,
    *,
    name: str,
    email: str,
    town: str,
    consent: bool,
    letter_body: str | None,
    channel: str,
    consent_channel: str,
    consent_detail: str,
    client_hash: str | None,
    settings: Settings,
    mailing_id: int | None = None,
) -> tuple[str, PendingAction | None]:
    """Hold the action until its address confirms; return (normalised email, pending row).

    Raises CampaignError for details the form must ask again. The row is None when the address
    has had its day's confirmation mails: nothing more is stored, and the page reads the same.
    """
    name, email, town = services.check_details(name, email, town, consent=consent)
    letter_body = services.clean_text(letter_body).strip() or None
    services.check_letter_length(letter_body)
    now = utcnow()
    mailed_today = db.session.scalar(
        select(func.count())
        .select_from(PendingAction)
        .where(PendingAction.email == email, PendingAction.created_at > now - timedelta(days=1))
    )
    if mailed_today >= MAILS_PER_ADDRESS_PER_DAY:
        return email, None
    pending = PendingAction(
        campaign_id=campaign.id,
        mailing_id=mailing_id,
        email=email,
        name=name,
        town=town,
        letter_body=letter_body,
        channel=channel,
        consent_channel=consent_channel,
        consent_detail=consent_detail[:300],
        client_hash=client_hash,
        flagged_reason=_burst_reason(campaign.id, client_hash, now),
        created_at=now,
    )
    db.session.add(pending)
    db.session.flush()
    enqueue(SEND_ACTION_CONFIRMATION, settings, pending.id, after_commit_of=db.session)
    return email, pending


def _burst_reason(campaign_id: int, client_hash: str | None, now) -> str | None:
    """Say why staff should look at this row: many rows from its network, or on its campaign."""
    since = now - BURST_WINDOW
    recent = select(func.count()).select_from(PendingAction).where(PendingAction.created_at > since)
    if client_hash and (
        db.session.scalar(recent.where(PendingAction.client_hash == client_hash))
        >= BURST_PER_CLIENT
    ):
        return FLAG_CLIENT_BURST
    if db.session.scalar(recent.where(PendingAction.campaign_id == campaign_id)) >= (
        BURST_PER_CAMPAIGN
    ):
        return FLAG_CAMPAIGN_BURST
    return None


def confirmation_message(pending: PendingAction, settings: Settings) -> tuple[bytes, str]:
    """Return the confirmation mail: our words and the campaign's title only.

    Nothing the typist wrote (name, letter) goes into it, so the form cannot be used to send
    someone else's text to any address from our domain.
    """
    campaign = db.session.get(Campaign, pending.campaign_id)
    _, sender = parseaddr(settings.mail_from)
    what = {
        CampaignKind.LETTER: "send the letter",
        CampaignKind.PETITION: "add your name to the petition",
    }.get(campaign.kind, "record your action")
    body = (
        "Hello,\n\n"
        f"Someone, we hope it was you, used this email address to act on “{campaign.title}”"
        f" with {settings.organisation_name}.\n\n"
        f"Nothing has been sent in your name yet. To {what}, open this link and press the"
        " button on the page:\n\n"
        f"{confirm_url(settings, pending.id)}\n\n"
        f"The link works for {CONFIRM_MAX_AGE // 86400} days. If this was not you, ignore this"
        " email: nothing will be sent, you will not be added to any list, and we delete the"
        " request when the link expires.\n\n"
        f"{settings.organisation_name}\n{settings.postal_address}\n"
    )
    return build_plain_message(
        sender=sender,
        to=pending.email,
        subject=f"Please confirm your action: {campaign.title}",
        body=body,
        from_name=settings.organisation_name,
        message_id_domain=sender.rpartition("@")[2] or "localhost",
        extra_headers={"Auto-Submitted": "auto-generated"},
    )


def send_confirmation(pending_id: int, settings: Settings, *, transport=None) -> str:
    """Mail the confirmation link once; return sent, failed (recorded on the row) or done.

    Temporary SMTP failures raise, so RQ retries. A worker killed between the server's
    acceptance and the commit sends the same link again: harmless, it still works once.
    """
    pending = db.session.scalar(
        select(PendingAction).where(PendingAction.id == pending_id).with_for_update()
    )
    if pending is None or pending.mail_sent_at is not None or pending.confirmed_at is not None:
        db.session.rollback()
        return "done"
    data, message_id = confirmation_message(pending, settings)
    own = transport is None
    transport = transport or SmtpTransport(settings.smtp)
    try:
        transport.send(parseaddr(settings.mail_from)[1], pending.email, data)
    except PermanentFailure as exc:
        # Recorded, so the clock's re-drive leaves the row alone instead of asking again.
        pending.mail_failed_at, pending.mail_error = utcnow(), str(exc)[:2000]
        db.session.commit()
        return "failed"
    finally:
        if own:
            transport.close()
    # A job staff requeued from RQ's failed registry may succeed after a recorded failure.
    pending.mail_sent_at, pending.mail_message_id = utcnow(), message_id
    pending.mail_failed_at = pending.mail_error = None
    db.session.commit()
    return "sent"


def redrive_unsent_confirmations(settings: Settings, now=None) -> int:
    """Enqueue again every owed confirmation mail whose job Redis lost; return how many.

    Only a job RQ no longer holds (a Redis restart without persistence, a flush, an enqueue
    that failed while Redis was down) or one left "started" by a dead worker is re-driven: a
    job waiting for one of RQ's retries is live and left to them. A job RQ gave up on is
    recorded as failed, so it is not re-driven tick after tick (staff can requeue it in RQ).
    Rows a worker holds locked are skipped; a duplicate job is harmless, as send_confirmation
    locks the row and does nothing for a mail already sent.
    """
    now = now or utcnow()
    owed = db.session.scalars(
        select(PendingAction)
        .where(
            confirmation_mail_owed(),
            PendingAction.created_at <= now - REDRIVE_GRACE,
            PendingAction.created_at > now - timedelta(seconds=CONFIRM_MAX_AGE),
        )
        .order_by(PendingAction.created_at)
        .limit(REDRIVE_BATCH)
        .with_for_update(skip_locked=True)
    ).all()
    not_live = without_live_job(SEND_ACTION_CONFIRMATION, settings, owed)
    failed_jobs = FailedJobRegistry(queue=queue_of(SEND_ACTION_CONFIRMATION, settings))
    redriven = 0
    for pending in not_live:
        if SEND_ACTION_CONFIRMATION.job_id(pending.id) in failed_jobs:
            pending.mail_failed_at, pending.mail_error = now, RQ_GAVE_UP
            log.warning("confirmation %s: %s; not re-driven", pending.id, RQ_GAVE_UP)
            continue
        enqueue(SEND_ACTION_CONFIRMATION, settings, pending.id)
        redriven += 1
    if redriven:
        log.info("confirmations: re-enqueued %d mails whose job was lost", redriven)
    return redriven


class ConfirmProblem(DomainError):
    """The confirmation link cannot be used; `status` is 400 or 410."""

    code = "confirmation_link_problem"

    def __init__(self, status: int, title: str, message: str):
        super().__init__(message, status=status)
        self.title = title


def pending_for_token(token: str, settings: Settings, *, lock: bool = False) -> PendingAction:
    """Return the unconfirmed pending action the link names, or raise ConfirmProblem."""
    try:
        pending_id = ConfirmTokens(settings.secret_keys).loads(token, max_age=CONFIRM_MAX_AGE)
    except TokenExpired as exc:
        raise ConfirmProblem(
            410,
            "This link has expired",
            "Confirmation links work for a week. Please take the action again on the "
            "campaign page.",
        ) from exc
    except TokenError as exc:
        raise ConfirmProblem(
            400,
            "This link is not valid",
            "The link may have been cut short when it was copied. Please open it again from "
            "the email, or copy the whole address.",
        ) from exc
    stmt = select(PendingAction).where(PendingAction.id == pending_id)
    pending = db.session.scalar(stmt.with_for_update() if lock else stmt)
    if pending is None:
        raise ConfirmProblem(
            410,
            "This link no longer works",
            "We no longer hold this request. If you still want to act, please do so again on "
            "the campaign page.",
        )
    if pending.confirmed_at is not None:
        raise ConfirmProblem(
            410,
            "Already confirmed",
            "This link has been used already, so your action is recorded. Thank you.",
        )
    return pending


def confirm_action(pending: PendingAction, settings: Settings) -> tuple[Supporter, Action, bool]:
    """Record the held action as the address's owner's; return (supporter, action, created).

    A new address becomes a subscribed supporter with the consent the form recorded; an existing
    supporter is not renamed or resubscribed (services.supporter_for_details). Raises
    CampaignError if the campaign closed meanwhile (callers show the closed page first).
    """
    campaign = db.session.get(Campaign, pending.campaign_id)
    supporter = services.supporter_for_details(
        pending.name,
        pending.email,
        pending.town,
        consent=True,
        channel=pending.consent_channel,
        detail=pending.consent_detail,
    )
    action, created = services.record_action(
        campaign,
        supporter,
        channel=pending.channel,
        letter_body=pending.letter_body,
        settings=settings,
    )
    pending.confirmed_at, pending.action_id = utcnow(), action.id
    return supporter, action, created


def letter_to_confirm(pending: PendingAction, campaign: Campaign) -> str | None:
    """Return the letter the confirmation will send, as record_action will write it."""
    if campaign.kind != CampaignKind.LETTER:
        return None
    if pending.letter_body:
        return pending.letter_body
    # The page is the address owner's alone: it may show their name as we hold it.
    known = find_by_email(pending.email)
    if known is not None:
        return letter_text.model_letter(
            campaign, known.full_name, letter_text.supporter_town(known)
        )
    return letter_text.model_letter(campaign, pending.name, pending.town)


def pending_summary(campaign_id: int, now=None) -> dict:
    """Count the campaign's held actions for staff: waiting, flagged (and why), confirmed."""
    now = now or utcnow()
    live = PendingAction.created_at > now - timedelta(seconds=CONFIRM_MAX_AGE)
    of_campaign = PendingAction.campaign_id == campaign_id
    waiting = PendingAction.confirmed_at.is_(None)
    counts = db.session.execute(
        select(
            func.count().filter(waiting),
            func.count().filter(waiting, PendingAction.flagged_reason.is_not(None)),
            func.count().filter(PendingAction.confirmed_at.is_not(None)),
            func.count().filter(PendingAction.created_at > now - timedelta(hours=1)),
        ).where(of_campaign, live)
    ).one()
    reasons = db.session.execute(
        select(PendingAction.flagged_reason, func.count())
        .where(of_campaign, live, waiting, PendingAction.flagged_reason.is_not(None))
        .group_by(PendingAction.flagged_reason)
    )
    return {
        "waiting": counts[0],
        "flagged": counts[1],
        "confirmed": counts[2],
        "last_hour": counts[3],
        "flagged_reasons": dict(reasons.all()),
        "window_days": CONFIRM_MAX_AGE // 86400,
    }


def purge_expired_pending(settings: Settings, now=None) -> int:
    """Delete held actions whose link has expired (confirmed or not); return how many.

    Unconfirmed rows may hold the name and words of someone who typed a stranger's address:
    keep them no longer than the link works.
    """
    cutoff = (now or utcnow()) - timedelta(seconds=CONFIRM_MAX_AGE)
    result = db.session.execute(
        delete(PendingAction)
        .where(PendingAction.created_at < cutoff)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0
