"""What a supporter decides from their inbox: unsubscribe, list preferences, and the mail in
the browser. Every status change goes through the consent history."""

from __future__ import annotations

import re
from email.message import EmailMessage

from app.extensions import db
from app.links.tokens import LinkClaims, Purpose, TokenError, TokenService
from app.mailings.abtest.assignment import variant_sent_to
from app.mailings.compose.rendering import Mode, Person, frozen_of, render_for
from app.supporters.models import ListMembership, MailingList, SubscriptionStatus, Supporter
from app.supporters.services import change_status
from app.tracking import machine
from app.tracking.models import EventKind
from app.tracking.services import record_event


def unsubscribe(
    supporter: Supporter,
    mailing_id: int,
    *,
    channel: str,
    user_agent: str | None = None,
    ua_class: str | None = None,
) -> bool:
    """Unsubscribe a subscribed supporter and record the event; return whether status changed.

    A bounced or complained supporter stays as they are: they are not mailed either way, and
    "unsubscribed" would wrongly offer them a resubscribe button.
    """
    changed = False
    if supporter.status == SubscriptionStatus.SUBSCRIBED:
        changed = change_status(
            supporter,
            SubscriptionStatus.UNSUBSCRIBED,
            channel=channel,
            actor="supporter",
            detail=f"mailing {mailing_id}",
        )
    verdict = machine.Verdict(False, "", ua_class or machine.user_agent_class(user_agent))
    record_event(EventKind.UNSUBSCRIBE, LinkClaims(mailing_id, supporter.id), verdict)
    return changed


def supporter_lists(supporter: Supporter) -> list[MailingList]:
    return sorted(supporter.lists, key=lambda m: m.name.lower())


class PreferenceRefused(Exception):
    """The supporter asked for something the preferences page may not do; message says why."""


def apply_preferences(
    supporter: Supporter, mailing_id: int, action: str, keep_list_ids: set[int]
) -> str:
    """Apply a preferences form; return a short message saying what changed."""
    detail = f"mailing {mailing_id}"
    if action == "unsubscribe_all":
        if supporter.status == SubscriptionStatus.SUBSCRIBED:
            change_status(
                supporter,
                SubscriptionStatus.UNSUBSCRIBED,
                channel="preferences",
                actor="supporter",
                detail=detail,
            )
            record_event(
                EventKind.UNSUBSCRIBE,
                LinkClaims(mailing_id, supporter.id),
                machine.Verdict(False, "", "browser"),
            )
        return "You are unsubscribed from all our emails."
    if action == "resubscribe":
        # Bounced and complained addresses are suppressed for the sender's reputation (and a
        # complaint is the person telling their provider we are spam): staff decide those.
        if supporter.status != SubscriptionStatus.UNSUBSCRIBED:
            raise PreferenceRefused("Your subscription cannot be changed from this page.")
        change_status(
            supporter,
            SubscriptionStatus.SUBSCRIBED,
            channel="preferences",
            actor="supporter",
            detail=detail,
        )
        return "Welcome back: you are subscribed again."
    if action == "save":
        leaving = [m for m in supporter.lists if m.id not in keep_list_ids]
        for mailing_list in leaving:
            db.session.execute(
                ListMembership.__table__.delete().where(
                    ListMembership.list_id == mailing_list.id,
                    ListMembership.supporter_id == supporter.id,
                )
            )
        db.session.expire(supporter, ["lists"])
        if not leaving:
            return "Nothing changed."
        names = ", ".join(m.name for m in leaving)
        return f"You have left: {names}."
    raise PreferenceRefused("That form could not be understood. Please try again.")


def render_for_browser(mailing, supporter: Supporter, settings, tokens: TokenService) -> str:
    """Render a frozen mailing's HTML for one supporter as their mail showed it, minus the pixel."""
    person = Person.of(supporter)
    frozen = frozen_of(mailing, variant_sent_to(mailing, supporter.id))
    return render_for(frozen, mailing.id, person, Mode.BROWSER, settings, tokens).html


# The List-Unsubscribe mailto subject, `unsubscribe-<token>` (mailers/message.py writes it).
_SUBJECT_TOKEN = re.compile(r"unsubscribe-([A-Za-z0-9_.-]+)", re.IGNORECASE)


def unsubscribe_by_mail(message: EmailMessage, tokens: TokenService) -> str:
    """Unsubscribe the supporter a mailed request names; return the outcome's name.

    The signed token in the subject, not the sender's address, says who asked: people write
    from aliases and forwarding addresses. Outcomes: unsubscribed, already_unsubscribed,
    already_removed, bad_token, no_token.
    """
    try:
        subject = str(message.get("Subject", ""))
    except Exception:  # a malformed encoded word; the raw header may still hold the token
        subject = str(message.get_all("Subject", [""])[0])
    match = _SUBJECT_TOKEN.search(subject)
    if not match:
        return "no_token"
    try:
        claims = tokens.loads(Purpose.UNSUBSCRIBE, match.group(1))
    except TokenError:
        return "bad_token"
    supporter = db.session.get(Supporter, claims.supporter_id)
    if supporter is None:
        return "already_removed"
    was_subscribed = supporter.status == SubscriptionStatus.SUBSCRIBED
    unsubscribe(supporter, claims.mailing_id, channel="mailto", ua_class="mailto")
    return "unsubscribed" if was_subscribed else "already_unsubscribed"
