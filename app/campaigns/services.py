"""Campaign services: opening and closing, model letters, and recording what supporters do.

Nothing here commits; views, jobs and the CLI do, once.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import nh3
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from app.api.pagination import paginate
from app.campaigns.letter_text import PLACEHOLDERS, model_letter, supporter_town
from app.campaigns.letters import queue_letter
from app.campaigns.models import (
    Action,
    Campaign,
    CampaignKind,
    CampaignStatus,
    CampaignTarget,
    Letter,
    LetterStatus,
)
from app.db import utcnow
from app.errors import Conflict, Invalid
from app.extensions import db
from app.links.tokens import LinkClaims
from app.mailings.delivery.campaign_gate import CampaignGate
from app.mailings.delivery.launch import hold_scheduled_mailings_of
from app.supporters.emails import normalise_email
from app.supporters.models import Supporter
from app.supporters.services import find_by_email, upsert_supporter
from app.tracking import machine
from app.tracking.models import EventKind
from app.tracking.services import record_event

# Staff write summaries and thank-you notes; these are all the tags a supporter's page renders.
ALLOWED_TAGS = {"p", "br", "strong", "em", "b", "i", "ul", "ol", "li", "a", "blockquote", "h3"}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}}


class CampaignError(Invalid, ValueError):
    """Input a campaign service cannot use; `details` maps field names to messages."""


def sanitise_html(text: str | None) -> str:
    """Return staff HTML with only the allowed tags, links forced to rel=noopener."""
    if not text:
        return ""
    return nh3.clean(
        text,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


def check_timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CampaignError(
            "Unknown time zone.", {"timezone": [f"No time zone {name!r}."]}
        ) from exc


def end_of_day(day: date, timezone: str) -> datetime:
    """Return the last second of `day` in `timezone`, as a UTC timestamp."""
    local = datetime.combine(day, time(23, 59, 59), tzinfo=check_timezone(timezone))
    return local.astimezone(ZoneInfo("UTC"))


def deadline_in_zone(campaign: Campaign) -> datetime | None:
    """Return the deadline as the campaign's own time zone reads it."""
    if campaign.deadline is None:
        return None
    try:
        return campaign.deadline.astimezone(ZoneInfo(campaign.timezone or "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        return campaign.deadline


def close_expired(now: datetime | None = None) -> int:
    """Flip open campaigns past their deadline to closed; return how many (pages need not wait)."""
    result = db.session.execute(
        update(Campaign)
        .where(Campaign.status == CampaignStatus.OPEN, Campaign.deadline <= (now or utcnow()))
        .values(status=CampaignStatus.CLOSED)
    )
    return result.rowcount or 0


def open_campaigns(now: datetime | None = None) -> list[Campaign]:
    now = now or utcnow()
    rows = db.session.scalars(
        select(Campaign).where(Campaign.status == CampaignStatus.OPEN).order_by(Campaign.deadline)
    )
    return [c for c in rows if c.is_open(now)]


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(value: str | None) -> str:
    """Drop control characters (NUL breaks PostgreSQL text) but keep newlines and tabs."""
    return _CONTROL.sub("", value or "").replace("\r\n", "\n")


def split_name(name: str) -> tuple[str, str | None]:
    parts = name.strip().rsplit(" ", 1)
    return (parts[0], parts[1]) if len(parts) == 2 else (parts[0], None)


def check_details(name: str, email: str, town: str, *, consent: bool) -> tuple[str, str, str]:
    """Return the form's name, normalised email and town, or raise CampaignError saying why not."""
    name, email, town = clean_text(name).strip(), clean_text(email), clean_text(town).strip()
    errors: dict[str, list[str]] = {}
    if not name:
        errors["name"] = ["Please give your name."]
    if not consent:
        errors["consent"] = ["Please tick the box so we may record your action."]
    try:
        email = normalise_email(email)
    except ValueError:
        errors["email"] = ["Please give a valid email address."]
    if len(name) > 200 or len(town) > 200:
        errors["name"] = ["Please keep your name and town under 200 characters."]
    if errors:
        raise CampaignError("Some details are missing.", errors)
    return name, email, town


def supporter_for_details(
    name: str, email: str, town: str, *, consent: bool, channel: str, detail: str
) -> Supporter:
    """Find the person with that email or create them, subscribed with their recorded consent.

    An existing supporter is left as they are: typing someone's address must not rename them,
    and an action never resubscribes a person who unsubscribed. Only call this for an address
    its owner has proven (a signed link or a confirmed pending action): see confirmations.py.
    """
    name, email, town = check_details(name, email, town, consent=consent)
    existing = find_by_email(email)
    if existing is not None:
        return existing
    first, last = split_name(name)
    supporter, _ = upsert_supporter(
        {
            "email": email,
            "first_name": first,
            "last_name": last,
            "custom_fields": {"town": town.strip()} if town.strip() else {},
            "source": f"campaign:{channel}",
            "consent": {"channel": channel, "detail": detail},
        },
        actor="supporter",
        channel=channel,
    )
    return supporter


LETTER_MAX_CHARACTERS = 20_000


def check_letter_length(text: str | None) -> None:
    if text and len(text) > LETTER_MAX_CHARACTERS:
        raise CampaignError(
            "The letter is too long.", {"letter": ["Keep it under 20,000 characters."]}
        )


def find_action(campaign: Campaign, supporter: Supporter) -> Action | None:
    return db.session.scalar(
        select(Action).where(Action.campaign_id == campaign.id, Action.supporter_id == supporter.id)
    )


def record_action(
    campaign: Campaign,
    supporter: Supporter,
    *,
    channel: str,
    mailing_id: int | None = None,
    letter_body: str | None = None,
    user_agent: str | None = None,
    settings=None,
) -> tuple[Action, bool]:
    """Record that the supporter acted (once per campaign); return (action, created).

    Letter campaigns get one letter per target: queued for those with an email address (sent
    after commit by workers.letters), held for the post for the rest.
    """
    existing = find_action(campaign, supporter)
    if existing is not None:
        return existing, False
    if campaign.kind == CampaignKind.LETTER:
        letter_body = clean_text(letter_body).strip() or model_letter(
            campaign, supporter.full_name, supporter_town(supporter)
        )
        check_letter_length(letter_body)
    action = Action(
        campaign_id=campaign.id,
        supporter_id=supporter.id,
        mailing_id=mailing_id,
        channel=channel,
        letter_subject=campaign.letter_subject if campaign.kind == CampaignKind.LETTER else None,
        letter_body=letter_body if campaign.kind == CampaignKind.LETTER else None,
    )
    try:
        # A double-click races itself: the unique key decides, the loser reads the winner.
        with db.session.begin_nested():
            db.session.add(action)
            db.session.flush()
    except IntegrityError:
        return find_action(campaign, supporter), False
    if campaign.kind == CampaignKind.LETTER:
        _create_letters(action, campaign, settings)
    if mailing_id is not None:
        verdict = machine.Verdict(False, "", machine.user_agent_class(user_agent))
        record_event(EventKind.ACTION, LinkClaims(mailing_id, supporter.id), verdict)
    return action, True


def _create_letters(action: Action, campaign: Campaign, settings) -> None:
    for target in campaign.targets:
        letter = Letter(
            action=action,
            target=target,
            status=LetterStatus.QUEUED if target.email else LetterStatus.HELD,
        )
        db.session.add(letter)
    db.session.flush()
    for letter in action.letters:
        if letter.status == LetterStatus.QUEUED and settings is not None:
            queue_letter(letter.id, settings)


def action_count(campaign_id: int) -> int:

    return db.session.scalar(
        select(func.count()).select_from(Action).where(Action.campaign_id == campaign_id)
    )


def deadline_passed_on(campaign: Campaign) -> str | None:
    """Return the closing date as people in the campaign's time zone read it."""
    local = deadline_in_zone(campaign)
    return f"{local.day} {local:%B %Y}" if local else None


def apply_campaign_fields(campaign: Campaign, data: dict) -> None:
    """Copy validated fields onto the campaign, turning a deadline date into its day's end.

    `targets`, when given, replaces them all, but only before anyone has acted (Conflict).
    """
    timezone = data.get("timezone") or campaign.timezone or "UTC"
    check_timezone(timezone)
    if data.get("deadline_date"):
        data["deadline"] = end_of_day(data.pop("deadline_date"), timezone)
    data["timezone"] = timezone
    targets = data.pop("targets", None)
    for name, value in data.items():
        if name in ("kind", "status"):
            value = CampaignKind(value) if name == "kind" else CampaignStatus(value)
        setattr(campaign, name, value)
    if campaign.kind == CampaignKind.CLICK and not campaign.external_url:
        raise Invalid(
            "A click campaign needs `external_url`.",
            {"external_url": ["Required for click campaigns."]},
        )
    if targets is not None:
        if campaign.id is not None and _has_actions(campaign.id):
            raise Conflict(
                "Supporters have acted already: targets can no longer be replaced.",
                code="campaign_has_actions",
            )
        campaign.targets = [CampaignTarget(position=n, **t) for n, t in enumerate(targets)]


def _has_actions(campaign_id: int) -> bool:
    found = db.session.scalar(select(Action.id).where(Action.campaign_id == campaign_id).limit(1))
    return found is not None


def campaign_by_slug(slug: str) -> Campaign | None:
    return db.session.scalar(select(Campaign).where(Campaign.slug == slug))


def campaign_id_by_slug(slug: str) -> int | None:
    return db.session.scalar(select(Campaign.id).where(Campaign.slug == slug))


def all_campaigns() -> list[Campaign]:
    """Return every campaign, oldest first."""
    return list(db.session.scalars(select(Campaign).order_by(Campaign.id)))


def list_campaigns(page: dict) -> dict:
    """Return a page of campaigns, newest first."""
    return paginate(select(Campaign).order_by(Campaign.id.desc()), page)


def list_actions(campaign_id: int, page: dict) -> dict:
    """Return a page of a campaign's actions, oldest first."""
    stmt = select(Action).where(Action.campaign_id == campaign_id).order_by(Action.id)
    return paginate(stmt, page)


def list_letters(campaign_id: int, query: dict) -> dict:
    """Return a page of a campaign's letters by id, of one status if `query` names one."""
    stmt = (
        select(Letter)
        .join(Action, Letter.action_id == Action.id)
        .where(Action.campaign_id == campaign_id)
        .order_by(Letter.id)
    )
    if query.get("status"):
        stmt = stmt.where(Letter.status == query["status"])
    return paginate(stmt, query)


def campaign_gate(campaign_id: int) -> CampaignGate | None:
    """Describe a campaign for the mailings domain's send check (wired in app/routes.py)."""
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None:
        return None
    return CampaignGate(
        id=campaign.id,
        title=campaign.title,
        status=campaign.status.value,
        deadline=campaign.deadline,
        is_open=campaign.is_open(),
    )


def change_status(campaign: Campaign, status: CampaignStatus) -> None:
    """Open or close the campaign; closing pauses the scheduled mailings that link to it."""
    apply_campaign_fields(campaign, {"status": status.value})
    db.session.flush()
    hold_scheduled_mailings_of(campaign.id)


def find_supporter(email_or_id: str) -> Supporter | None:
    """Return the supporter with this id or (normalised) email address, if any."""
    text = (email_or_id or "").strip()
    if text.isdigit():
        return db.session.get(Supporter, int(text)) if int(text) < 2**63 else None
    try:
        return find_by_email(normalise_email(text))
    except ValueError:
        return None


_BRACED_WORD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def unknown_placeholders(letter_body: str | None) -> list[str]:
    """Return the {words} in a model letter that are not placeholders (sent as written)."""
    found = dict.fromkeys(_BRACED_WORD.findall(letter_body or ""))
    return [f"{{{word}}}" for word in found if word not in PLACEHOLDERS]
