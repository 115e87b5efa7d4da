"""What a supporter decides from their inbox: unsubscribe, list preferences, and the mail in
the browser. Every status change goes through the consent history."""

from __future__ import annotations

from app.extensions import db
from app.supporters.models import ListMembership, MailingList, SubscriptionStatus, Supporter
from app.supporters.services import change_status
from app.tracking import machine
from app.tracking.models import EventKind
from app.tracking.services import record_event
from app.tracking.tokens import LinkClaims


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


# A blank 1×1 GIF inline, so the page viewed in a browser fetches no open pixel.
BLANK_GIF_URI = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"


def render_for_browser(mailing, supporter: Supporter, settings) -> str:
    """Render a frozen mailing's HTML for one supporter as their mail showed it, minus the pixel."""
    from app.mailings.recipients import supporter_fields
    from app.tracking.links import recipient_urls
    from app.tracking.tokens import TokenService
    from mailers.render import FrozenMailing

    frozen = FrozenMailing.from_sources(
        mailing.frozen_subject,
        mailing.frozen_html,
        mailing.frozen_text,
        [(link.position, link.url, link.is_honeypot) for link in mailing.links],
    )
    # The context MessageFactory renders with: empty fields stay undefined so that
    # `default("Friend")` applies, then the recipient's URLs.
    fields = supporter_fields(supporter)
    context = {k: v for k, v in fields.items() if v is not None and v != ""}
    urls = recipient_urls(
        settings.base_url, TokenService(settings.secret_keys), mailing.id, supporter.id
    )
    urls["open_url"] = BLANK_GIF_URI  # a view in the browser is not an open
    context.update(urls)
    return frozen.html_template.render(context)
