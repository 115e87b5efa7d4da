"""Clarion's rows as OSDI v2 resources (HAL+JSON), with the field names Action Network uses.

Every resource carries `identifiers` ["clarion:<id>", "action_network:<id>"]: Action Network
clients (Parsons among them) take the id after "action_network:" to build the resource's URL.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from urllib.parse import urlencode

from flask import current_app, request

from app.campaigns.models import Action, Campaign
from app.mailings.models import Mailing
from app.supporters.models import MailingList, SubscriptionStatus, Supporter, Tag

PREFIX = "/api/osdi/v1"
# Clarion's consent states in Action Network's words (and back: app/osdi/people.py).
EMAIL_STATUS = {
    SubscriptionStatus.SUBSCRIBED: "subscribed",
    SubscriptionStatus.UNSUBSCRIBED: "unsubscribed",
    SubscriptionStatus.BOUNCED: "bouncing",
    SubscriptionStatus.COMPLAINED: "spam complaint",
}
# The custom field Clarion's letters read the supporter's town from (`{supporter_town}`).
TOWN_FIELD = "town"
CURIES = [{"name": "osdi", "href": "https://opensupporter.org/docs/v2/{rel}", "templated": True}]


def url(path: str = "") -> str:
    """The absolute URL of an OSDI path, on Clarion's public address."""
    return f"{current_app.config['CLARION'].base_url}{PREFIX}/{path}".rstrip("/")


def iso(moment: datetime | None) -> str | None:
    """Action Network's timestamp form: UTC to the second, with a Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def identifiers(resource_id: int | str) -> list[str]:
    return [f"clarion:{resource_id}", f"action_network:{resource_id}"]


def links(self_path: str, **related: str) -> dict:
    found = {"self": {"href": url(self_path)}}
    found.update({f"osdi:{rel}": {"href": url(path)} for rel, path in related.items()})
    return found


def person(supporter: Supporter) -> dict:
    path = f"people/{supporter.id}"
    custom = dict(supporter.custom_fields or {})
    address = {
        key: value
        for key, value in (
            ("postal_code", supporter.postcode),
            ("locality", custom.get(TOWN_FIELD)),
            ("country", supporter.country),
        )
        if value not in (None, "")
    }
    return {
        "identifiers": identifiers(supporter.id),
        "created_date": iso(supporter.created_at),
        "modified_date": iso(supporter.updated_at),
        "given_name": supporter.first_name,
        "family_name": supporter.last_name,
        "email_addresses": [
            {"primary": True, "address": supporter.email, "status": EMAIL_STATUS[supporter.status]}
        ],
        "phone_numbers": [],
        "postal_addresses": [{"primary": True, **address}] if address else [],
        "languages_spoken": [supporter.language] if supporter.language else [],
        "custom_fields": custom,
        "_links": {
            **links(path, taggings=f"{path}/taggings", outreaches=f"{path}/outreaches"),
            "curies": CURIES,
        },
    }


def tag(item: Tag) -> dict:
    path = f"tags/{item.id}"
    return {
        "identifiers": identifiers(item.id),
        "created_date": iso(item.created_at),
        "modified_date": iso(item.created_at),
        "name": item.name,
        "_links": links(path, taggings=f"{path}/taggings"),
    }


def tagging_id(tag_id: int, supporter_id: int) -> str:
    """A tagging is a (tag, supporter) pair; its id names both, so it is unique everywhere."""
    return f"{tag_id}-{supporter_id}"


def tagging(tag_id: int, supporter_id: int) -> dict:
    tagging_key = tagging_id(tag_id, supporter_id)
    return {
        "identifiers": identifiers(tagging_key),
        "item_type": "osdi:person",
        "_links": {
            **links(f"tags/{tag_id}/taggings/{tagging_key}"),
            "osdi:tag": {"href": url(f"tags/{tag_id}")},
            "osdi:person": {"href": url(f"people/{supporter_id}")},
        },
    }


def mailing_list(item: MailingList, members: int) -> dict:
    path = f"lists/{item.id}"
    return {
        "identifiers": identifiers(item.id),
        "created_date": iso(item.created_at),
        "modified_date": iso(item.created_at),
        "name": item.name,
        "title": item.name,
        "description": item.description,
        "total_items": members,
        "_links": links(path, items=f"{path}/items"),
    }


def list_item(list_id: int, supporter_id: int, added: datetime | None) -> dict:
    return {
        "identifiers": identifiers(supporter_id),
        "created_date": iso(added),
        "modified_date": iso(added),
        "item_type": "osdi:person",
        "_links": {
            **links(f"lists/{list_id}/items/{supporter_id}"),
            "osdi:list": {"href": url(f"lists/{list_id}")},
            "osdi:person": {"href": url(f"people/{supporter_id}")},
        },
    }


def advocacy_campaign(campaign: Campaign, outreaches: int) -> dict:
    path = f"advocacy_campaigns/{campaign.id}"
    return {
        "identifiers": identifiers(campaign.id),
        "origin_system": "Clarion",
        "created_date": iso(campaign.created_at),
        "modified_date": iso(campaign.updated_at),
        "title": campaign.title,
        "description": campaign.summary,
        "status": campaign.status.value,
        "deadline": iso(campaign.deadline),
        "reference": campaign.reference,
        "targets": [
            {
                "title": target.title,
                "organization": target.organisation,
                "given_name": target.name,
                "postal_addresses": (
                    [{"address_lines": target.postal_address.splitlines()}]
                    if target.postal_address
                    else []
                ),
            }
            for target in campaign.targets
        ],
        "total_outreaches": outreaches,
        "_links": links(path, outreaches=f"{path}/outreaches"),
    }


def outreach(action: Action, targets: list[dict]) -> dict:
    path = f"advocacy_campaigns/{action.campaign_id}/outreaches/{action.id}"
    found = links(path)
    found["osdi:advocacy_campaign"] = {"href": url(f"advocacy_campaigns/{action.campaign_id}")}
    if action.supporter_id is not None:  # None once the person was erased
        found["osdi:person"] = {"href": url(f"people/{action.supporter_id}")}
    return {
        "identifiers": identifiers(action.id),
        "created_date": iso(action.created_at),
        "modified_date": iso(action.created_at),
        "type": "email",
        "subject": action.letter_subject,
        "message": action.letter_body,
        "targets": targets,
        "action_network:referrer_data": {"source": action.channel},
        "_links": found,
    }


def message(mailing: Mailing, statistics: dict) -> dict:
    return {
        "identifiers": identifiers(mailing.id),
        "origin_system": "Clarion",
        "created_date": iso(mailing.created_at),
        "modified_date": iso(mailing.updated_at),
        "name": mailing.name,
        "subject": mailing.subject,
        "from": mailing.from_name,
        "reply_to": mailing.reply_to,
        "status": mailing.status.value,
        "type": "email",
        "sent_start_date": iso(mailing.started_at),
        "total_targeted": mailing.total_recipients,
        "statistics": statistics,
        "_links": links(f"messages/{mailing.id}"),
    }


def collection(name: str, items: list[dict], *, page: int, per_page: int, total: int) -> dict:
    """An OSDI collection page: `_embedded["osdi:<name>"]`, counts and next/previous links."""
    pages = math.ceil(total / per_page) if total else 0
    found = {"self": {"href": _page_url(page, per_page)}}
    if page < pages:
        found["next"] = {"href": _page_url(page + 1, per_page)}
    if 1 < page <= pages + 1:
        found["previous"] = {"href": _page_url(page - 1, per_page)}
    found[f"osdi:{name}"] = [item["_links"]["self"] for item in items]
    found["curies"] = CURIES
    return {
        "total_pages": pages,
        "per_page": per_page,
        "page": page,
        "total_records": total,
        "_links": found,
        "_embedded": {f"osdi:{name}": items},
    }


def _page_url(page: int, per_page: int) -> str:
    args = {k: v for k, v in request.args.items() if k not in ("page", "per_page")}
    query = urlencode({**args, "page": page, "per_page": per_page})
    path = request.path.removeprefix(PREFIX).lstrip("/")
    return f"{url(path)}?{query}"
