"""The OSDI API's reads and its tag writes, over the domains' models and services.

People are in app/osdi/people.py. Everything here returns OSDI resources (app/osdi/resources.py)
or raises OsdiError; nothing commits.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from app.campaigns.models import Action, Campaign, CampaignKind, Letter
from app.extensions import db
from app.mailings.models import Mailing
from app.osdi import resources
from app.osdi.errors import OsdiError
from app.osdi.paging import PageRequest, offset_page
from app.osdi.people import canonical_tag_names, check, find_tag_by_name
from app.security import parse_id
from app.supporters import services as supporters
from app.supporters.models import ListMembership, MailingList, Supporter, SupporterTag, Tag
from app.supporters.schemas import TagInSchema
from app.tracking.stats import bounces_for_mailings, stats_for_mailings


def existing(model, object_id: int, label: str):
    """The row with this id, or a 404 in Action Network's words."""
    found = db.session.get(model, object_id)
    if found is None:
        raise OsdiError(404, f"Couldn't find {label} with id = {object_id}")
    return found


# --- tags and taggings -----------------------------------------------------------------------


def tags_page(wanted: PageRequest) -> tuple[list[dict], int]:
    rows, total = offset_page(select(Tag).order_by(Tag.id), wanted)
    return [resources.tag(t) for t in rows], total


def find_or_create_tag(body) -> tuple[Tag, bool]:
    """Return the tag named in the body, creating it if no tag has that name ignoring case."""
    name = check(TagInSchema(), body if isinstance(body, dict) else {})["name"].strip()
    tag = find_tag_by_name(name)
    if tag is not None:
        return tag, False
    (tag,) = supporters.tags_by_name([name])
    db.session.flush()
    return tag, True


def taggings_page(tag: Tag, wanted: PageRequest) -> tuple[list[dict], int]:
    stmt = (
        select(SupporterTag.supporter_id)
        .where(SupporterTag.tag_id == tag.id)
        .order_by(SupporterTag.supporter_id)
    )
    ids, total = offset_page(stmt, wanted)
    return [resources.tagging(tag.id, i) for i in ids], total


def person_taggings_page(supporter: Supporter, wanted: PageRequest) -> tuple[list[dict], int]:
    stmt = (
        select(SupporterTag.tag_id)
        .where(SupporterTag.supporter_id == supporter.id)
        .order_by(SupporterTag.tag_id)
    )
    ids, total = offset_page(stmt, wanted)
    return [resources.tagging(i, supporter.id) for i in ids], total


def tagged_person(tag: Tag, tagging_id: str) -> Supporter:
    """The person of the tagging `<tag id>-<person id>` of this tag, or a 404."""
    tag_part, _, person_part = tagging_id.partition("-")
    supporter_id = parse_id(person_part)
    if tag_part != str(tag.id) or supporter_id is None:
        raise OsdiError(404, f"Couldn't find tagging with id = {tagging_id}")
    supporter = db.session.get(Supporter, supporter_id)
    if supporter is None or tag not in supporter.tags:
        raise OsdiError(404, f"Couldn't find tagging with id = {tagging_id}")
    return supporter


def tag_person(tag: Tag, body) -> Supporter:
    """Give the person the body links to (`_links["osdi:person"].href`) this tag."""
    href = None
    if isinstance(body, dict) and isinstance(body.get("_links"), dict):
        person_link = body["_links"].get("osdi:person")
        href = person_link.get("href") if isinstance(person_link, dict) else None
    if not isinstance(href, str):
        raise OsdiError(400, 'Send the person as {"_links": {"osdi:person": {"href": "…"}}}.')
    supporter_id = parse_id(href.rstrip("/").rpartition("/")[2])
    if supporter_id is None:
        raise OsdiError(400, f"{href[:200]!r} is not the URL of a person.")
    supporter = existing(Supporter, supporter_id, "person")
    supporters.add_tags(supporter, canonical_tag_names([tag.name]))
    return supporter


# --- lists and their items -------------------------------------------------------------------


def lists_page(wanted: PageRequest) -> tuple[list[dict], int]:
    rows, total = offset_page(select(MailingList).order_by(MailingList.id), wanted)
    counts = supporters.member_counts()
    return [resources.mailing_list(m, counts.get(m.id, (0, 0))[0]) for m in rows], total


def one_list(mailing_list: MailingList) -> dict:
    members = supporters.member_counts().get(mailing_list.id, (0, 0))[0]
    return resources.mailing_list(mailing_list, members)


def items_page(mailing_list: MailingList, wanted: PageRequest) -> tuple[list[dict], int]:
    stmt = (
        select(ListMembership.supporter_id, ListMembership.created_at)
        .where(ListMembership.list_id == mailing_list.id)
        .order_by(ListMembership.supporter_id)
    )
    rows, total = offset_page(stmt, wanted, scalars=False)
    return [resources.list_item(mailing_list.id, i, at) for i, at in rows], total


def list_item(mailing_list: MailingList, supporter_id: int) -> dict:
    added = db.session.scalar(
        select(ListMembership.created_at).where(
            ListMembership.list_id == mailing_list.id,
            ListMembership.supporter_id == supporter_id,
        )
    )
    if added is None:
        raise OsdiError(404, f"Couldn't find item with id = {supporter_id}")
    return resources.list_item(mailing_list.id, supporter_id, added)


# --- advocacy campaigns (letter campaigns) and outreaches (the letters sent) -------------------


def letter_campaign(campaign_id: int) -> Campaign:
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None or campaign.kind != CampaignKind.LETTER:
        raise OsdiError(404, f"Couldn't find advocacy_campaign with id = {campaign_id}")
    return campaign


def campaigns_page(wanted: PageRequest) -> tuple[list[dict], int]:
    stmt = (
        select(Campaign)
        .where(Campaign.kind == CampaignKind.LETTER)
        .options(selectinload(Campaign.targets))
        .order_by(Campaign.id)
    )
    rows, total = offset_page(stmt, wanted)
    counts = _outreach_counts([c.id for c in rows])
    return [resources.advocacy_campaign(c, counts.get(c.id, 0)) for c in rows], total


def one_campaign(campaign: Campaign) -> dict:
    return resources.advocacy_campaign(
        campaign, _outreach_counts([campaign.id]).get(campaign.id, 0)
    )


def _outreach_counts(campaign_ids: list[int]) -> dict[int, int]:
    rows = db.session.execute(
        select(Action.campaign_id, func.count())
        .where(Action.campaign_id.in_(campaign_ids))
        .group_by(Action.campaign_id)
    )
    return dict(rows.all())


def _outreaches(where, wanted: PageRequest) -> tuple[list[dict], int]:
    stmt = (
        select(Action)
        .join(Campaign, Campaign.id == Action.campaign_id)
        .where(Campaign.kind == CampaignKind.LETTER, *where)
        .options(selectinload(Action.letters).selectinload(Letter.target))
        .order_by(Action.id)
    )
    rows, total = offset_page(stmt, wanted)
    return [resources.outreach(a, _targets(a)) for a in rows], total


def campaign_outreaches_page(campaign: Campaign, wanted: PageRequest):
    return _outreaches([Action.campaign_id == campaign.id], wanted)


def person_outreaches_page(supporter: Supporter, wanted: PageRequest):
    return _outreaches([Action.supporter_id == supporter.id], wanted)


def one_outreach(outreach_id: int, *, campaign_id=None, supporter_id=None) -> dict:
    where = [Action.id == outreach_id]
    if campaign_id is not None:
        where.append(Action.campaign_id == campaign_id)
    if supporter_id is not None:
        where.append(Action.supporter_id == supporter_id)
    found, _ = _outreaches(where, PageRequest(1, 1))
    if not found:
        raise OsdiError(404, f"Couldn't find outreach with id = {outreach_id}")
    return found[0]


def _targets(action: Action) -> list[dict]:
    return [
        {
            "title": letter.target.title,
            "organization": letter.target.organisation,
            "given_name": letter.target.name,
            "action_network:letter_status": letter.status.value,
        }
        for letter in action.letters
    ]


# --- messages (mailings) ---------------------------------------------------------------------


def messages_page(wanted: PageRequest) -> tuple[list[dict], int]:
    rows, total = offset_page(select(Mailing).order_by(Mailing.id), wanted)
    figures = statistics([m.id for m in rows])
    return [resources.message(m, figures[m.id]) for m in rows], total


def one_message(mailing: Mailing) -> dict:
    return resources.message(mailing, statistics([mailing.id])[mailing.id])


def statistics(mailing_ids: list[int]) -> dict[int, dict]:
    """Action Network's message statistics from Clarion's figures: people only, no machines.

    `sent` is what left Clarion (accepted by the relay), `delivered` that less the recipients
    who bounced; opens, clicks and actions are distinct people (image proxies and link
    scanners left out), as Clarion's reports count them.
    """
    stats = stats_for_mailings(mailing_ids)
    bounces = bounces_for_mailings(mailing_ids)
    found = {}
    for mailing_id in mailing_ids:
        figures, bounced = stats[mailing_id], bounces[mailing_id]
        sent = figures["deliveries"].get("sent", 0)
        found[mailing_id] = {
            "sent": sent,
            "delivered": max(sent - bounced["bounced"], 0),
            "opened": figures["opens"]["human"],
            "clicked": figures["clicks"]["human"],
            "actions": figures["actions"]["human"],
            "unsubscribed": figures["unsubscribes"]["human"],
            "bounced": bounced["bounced"],
            "spam_reports": bounced["complaints"],
        }
    return found
