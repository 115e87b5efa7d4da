"""The campaigns domain's share of GDPR access and erasure: actions and the letters they sent.

An action stays on erasure (campaign counts, the channel, the mailing that drove it) but its
letter, which holds the person's name, town and own words, is replaced by ERASED_LETTER. Its
letters keep their status rows (sent stays sent, with its time and Message-ID); one still
queued is withdrawn rather than sent without its author.
"""

from __future__ import annotations

from sqlalchemy import delete, select, update

from app.campaigns.models import (
    Action,
    Campaign,
    CampaignTarget,
    Letter,
    LetterStatus,
    PendingAction,
)
from app.extensions import db
from app.supporters.emails import email_for_lookup
from app.supporters.models import Supporter
from app.supporters.privacy import iso

ERASED_LETTER = "[erased at the supporter's request]"
WITHDRAWN = "Withdrawn before sending: the supporter's data was erased."


def export_supporter_data(supporter: Supporter) -> dict:
    """Return the person's actions with their letter text and each letter's state."""
    actions = db.session.execute(
        select(Action, Campaign.title, Campaign.slug)
        .join(Campaign, Campaign.id == Action.campaign_id)
        .where(Action.supporter_id == supporter.id)
        .order_by(Action.id)
    ).all()
    letters = db.session.execute(
        select(Letter, CampaignTarget)
        .join(CampaignTarget, CampaignTarget.id == Letter.target_id)
        .where(Letter.action_id.in_([action.id for action, _, _ in actions]))
        .order_by(Letter.id)
    )
    by_action: dict[int, list[dict]] = {}
    for letter, target in letters:
        by_action.setdefault(letter.action_id, []).append(
            {
                "target_name": target.name,
                "target_organisation": target.organisation,
                "status": letter.status.value,
                "attempts": letter.attempts,
                "sent_at": iso(letter.sent_at),
                "message_id": letter.message_id,
                "error": letter.error,
            }
        )
    return {
        "campaign_actions": [
            {
                "campaign_id": action.campaign_id,
                "campaign_title": title,
                "campaign_slug": slug,
                "channel": action.channel,
                "mailing_id": action.mailing_id,
                "created_at": iso(action.created_at),
                "letter_subject": action.letter_subject,
                "letter_body": action.letter_body,
                "letters": by_action.get(action.id, []),
            }
            for action, title, slug in actions
        ],
        "unconfirmed_actions": export_unconfirmed_actions(supporter),
    }


def erase_supporter_data(supporter_id: int) -> None:
    """Blank the person's letters, withdraw those not yet sent, keep every action and state."""
    supporter = db.session.get(Supporter, supporter_id)
    if supporter is not None:
        erase_unconfirmed_actions(supporter)
    theirs = select(Action.id).where(Action.supporter_id == supporter_id)
    db.session.execute(
        update(Letter)
        .where(Letter.action_id.in_(theirs), Letter.status == LetterStatus.QUEUED)
        .values(status=LetterStatus.FAILED, error=WITHDRAWN, next_attempt_at=None)
        .execution_options(synchronize_session=False)
    )
    # A failed letter's SMTP error may quote the letter or the person.
    db.session.execute(
        update(Letter)
        .where(Letter.action_id.in_(theirs), Letter.error.is_not(None), Letter.error != WITHDRAWN)
        .values(error=None)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        update(Action)
        .where(Action.supporter_id == supporter_id, Action.letter_body.is_not(None))
        .values(letter_body=ERASED_LETTER)
        .execution_options(synchronize_session=False)
    )


def export_unconfirmed_actions(supporter: Supporter) -> list[dict]:
    """Return the actions typed with the person's address, held until it confirms."""
    return export_pending_for_email(supporter.email)


def erase_unconfirmed_actions(supporter: Supporter) -> None:
    """Delete every held action typed with the person's address (nothing counts them)."""
    erase_pending_for_email(supporter.email)


def _rows_for_email(email: str):
    return PendingAction.email == email_for_lookup(email)


def export_pending_for_email(email: str) -> list[dict]:
    """Return the held (and recently confirmed) actions typed with this address (GDPR art. 15)."""
    rows = db.session.execute(
        select(PendingAction, Campaign.title, Campaign.slug)
        .join(Campaign, Campaign.id == PendingAction.campaign_id)
        .where(_rows_for_email(email))
        .order_by(PendingAction.id)
    )
    return [
        {
            "campaign_id": pending.campaign_id,
            "campaign_title": title,
            "campaign_slug": slug,
            "name": pending.name,
            "town": pending.town,
            "letter_body": pending.letter_body,
            "channel": pending.channel,
            "consent_channel": pending.consent_channel,
            "consent_detail": pending.consent_detail,
            "created_at": iso(pending.created_at),
            "confirmation_mailed_at": iso(pending.mail_sent_at),
            "confirmation_failed_at": iso(pending.mail_failed_at),
            "confirmation_error": pending.mail_error,
            "confirmed_at": iso(pending.confirmed_at),
        }
        for pending, title, slug in rows
    ]


def erase_pending_for_email(email: str) -> int:
    """Delete every held action typed with this address (GDPR art. 17); return how many."""
    result = db.session.execute(
        delete(PendingAction)
        .where(_rows_for_email(email))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0
