"""People through OSDI: the person signup helper (create or update by email) and PUT.

A request in Action Network's shape becomes the fields Clarion's supporter services take, is
checked by the same schema as /api/v1 (one set of rules), and is saved by those services, so
every guarantee holds here too: an address is normalised once, every status change lands in
the consent history, and a suppressed person is never resubscribed by a sync.
"""

from __future__ import annotations

from marshmallow import ValidationError
from sqlalchemy import func, select

from app.auth import audit
from app.extensions import db
from app.osdi.errors import OsdiError
from app.osdi.filters import Condition
from app.supporters import services
from app.supporters.emails import email_for_lookup, normalise_email
from app.supporters.models import SubscriptionStatus, Supporter, Tag
from app.supporters.schemas import SupporterPatchSchema, SupporterUpsertSchema

# Action Network's email statuses (the ones Parsons documents) as Clarion's consent states.
STATUS_FROM_OSDI = {
    "subscribed": SubscriptionStatus.SUBSCRIBED,
    "unsubscribed": SubscriptionStatus.UNSUBSCRIBED,
    "bouncing": SubscriptionStatus.BOUNCED,
    "previous bounce": SubscriptionStatus.BOUNCED,
    "spam complaint": SubscriptionStatus.COMPLAINED,
    "previous spam complaint": SubscriptionStatus.COMPLAINED,
}
# Clarion's field names in schema errors, told back in OSDI's.
OSDI_NAMES = {
    "email": "email_addresses",
    "first_name": "given_name",
    "last_name": "family_name",
    "language": "languages_spoken",
    "postcode": "postal_addresses.postal_code",
    "country": "postal_addresses.country",
    "tags": "add_tags",
}
TOWN_FIELD = "town"  # app/osdi/resources.py TOWN_FIELD: an address's locality
CHANNEL = "osdi"


def sign_up(body, *, actor: str) -> tuple[Supporter, bool]:
    """Create or update the person by email (the signup helper); return (them, created)."""
    body = _object(body, "The request body")
    person = _object(body["person"], "person") if "person" in body else body
    data = read_person(person)
    data["tags"] = canonical_tag_names(_names(body.get("add_tags"), "add_tags"))
    removed = _names(body.get("remove_tags"), "remove_tags")
    if "email" not in data:
        raise OsdiError(400, "person.email_addresses needs an address: Clarion matches by email.")
    checked = check(SupporterUpsertSchema(), data)
    existing = services.find_by_email(normalise_email(checked["email"]))
    before = existing.status if existing else None
    _keep_suppressed(existing, checked)
    supporter, created = services.upsert_supporter(checked, actor=actor, channel=CHANNEL)
    remove_tags(supporter, removed)
    _audit_status(supporter, before, actor)
    return supporter, created


def update_person(supporter: Supporter, body, *, actor: str) -> Supporter:
    """Change what the body sends (PUT people/{id}); what it leaves out stays."""
    body = _object(body, "The request body")
    person = _object(body["person"], "person") if "person" in body else body
    checked = check(SupporterPatchSchema(), read_person(person))
    before = supporter.status
    _keep_suppressed(supporter, checked)
    services.update_supporter(supporter, checked, actor=actor)
    _audit_status(supporter, before, actor)
    return supporter


def read_person(person: dict) -> dict:
    """Return the Clarion supporter fields an OSDI person sends (only those it sends)."""
    data: dict = {}
    email = _primary_email(person)
    if email is not None:
        address, status = email
        data["email"] = address
        if status is not None:
            data["status"] = status.value
    for osdi_name, name in (("given_name", "first_name"), ("family_name", "last_name")):
        if osdi_name in person:
            data[name] = _text_or_none(person[osdi_name], osdi_name)
    if "languages_spoken" in person:
        languages = _list(person["languages_spoken"], "languages_spoken")
        data["language"] = _text_or_none(languages[0], "languages_spoken") if languages else None
    custom = {}
    if "custom_fields" in person and person["custom_fields"] is not None:
        custom = dict(_object(person["custom_fields"], "custom_fields"))
    if "postal_addresses" in person:
        addresses = [
            _object(a, "postal_addresses") for a in _list(person["postal_addresses"], "postal")
        ]
        if addresses:
            address = next((a for a in addresses if a.get("primary") is True), addresses[0])
            for osdi_name, name in (("postal_code", "postcode"), ("country", "country")):
                if osdi_name in address:
                    data[name] = _text_or_none(address[osdi_name], f"postal_addresses.{osdi_name}")
            if "locality" in address:
                custom[TOWN_FIELD] = _text_or_none(address["locality"], "postal_addresses.locality")
    if custom:
        data["custom_fields"] = custom
    return data


def _primary_email(person: dict) -> tuple[str, SubscriptionStatus | None] | None:
    if "email_addresses" in person:
        entries = [_object(e, "email_addresses") for e in _list(person["email_addresses"], "email")]
    elif "email_address" in person:  # the form Parsons' update_person documents
        entry = person["email_address"]
        entries = [{"address": entry} if isinstance(entry, str) else _object(entry, "email")]
    else:
        return None
    if not entries:
        return None
    entry = next((e for e in entries if e.get("primary") is True), entries[0])
    address = entry.get("address", entry.get("email_address"))
    if not isinstance(address, str):
        raise OsdiError(400, "email_addresses[].address must be a string.")
    status = entry.get("status")
    if status is None:
        return address, None
    if not isinstance(status, str) or status.strip().lower() not in STATUS_FROM_OSDI:
        raise OsdiError(
            400, f"Unknown email status {status!r}; use one of: {', '.join(STATUS_FROM_OSDI)}."
        )
    return address, STATUS_FROM_OSDI[status.strip().lower()]


def _keep_suppressed(supporter: Supporter | None, data: dict) -> None:
    """Drop a `subscribed` that would resubscribe a suppressed person: a sync is no opt-in.

    The rest of the request still applies, and the answer shows the status Clarion kept.
    """
    if (
        supporter is not None
        and supporter.is_suppressed
        and data.get("status") == SubscriptionStatus.SUBSCRIBED.value
    ):
        del data["status"]


def _audit_status(supporter: Supporter, before: SubscriptionStatus | None, actor: str) -> None:
    if before is not None and supporter.status != before:
        audit.record(
            actor,
            "supporter_status_changed",
            subject_type="supporter",
            subject_id=supporter.id,
            detail=f"{before.value} → {supporter.status.value} (OSDI API)",
        )


def remove_tags(supporter: Supporter, names: list[str]) -> None:
    """Untag the person of each named tag, ignoring case (a tag they lack is no error)."""
    lowered = {n.strip().lower() for n in names}
    for tag in [t for t in supporter.tags if t.name.lower() in lowered]:
        services.remove_tag(supporter, tag.name)


def canonical_tag_names(names: list[str]) -> list[str]:
    """Return the names as existing tags spell them (OSDI tags ignore case); new ones as given."""
    wanted = {}
    for name in names:
        wanted.setdefault(name.strip().lower(), name.strip())  # "Donor", "donor": one tag
    if not wanted:
        return []
    for name in reversed(db_tag_names(set(wanted))):  # the oldest spelling is set last
        wanted[name.lower()] = name
    return list(wanted.values())


def db_tag_names(lowered: set[str]) -> list[str]:
    return list(
        db.session.scalars(
            select(Tag.name).where(func.lower(Tag.name).in_(sorted(lowered))).order_by(Tag.id)
        )
    )


def find_tag_by_name(name: str) -> Tag | None:
    """The tag with this name ignoring case (the oldest, should Clarion hold two spellings)."""
    return db.session.scalar(
        select(Tag).where(func.lower(Tag.name) == name.strip().lower()).order_by(Tag.id).limit(1)
    )


def person_conditions(conditions: list[Condition]) -> list:
    """The SQL for a people filter's conditions."""
    columns = {"modified_date": Supporter.updated_at, "created_date": Supporter.created_at}
    found = []
    for condition in conditions:
        if condition.field == "email_address":
            found.append(Supporter.email == email_for_lookup(condition.value))
        elif condition.operator == "gt":
            found.append(columns[condition.field] > condition.value)
        else:
            found.append(columns[condition.field] < condition.value)
    return found


def check(schema, data: dict) -> dict:
    """Load `data` with a Clarion schema (the same rules as /api/v1), or raise a 400."""
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise OsdiError(400, "Some of the input is invalid: " + _describe(exc.messages)) from exc


def _describe(messages) -> str:
    if not isinstance(messages, dict):
        return str(messages)
    parts = []
    for field, problem in messages.items():
        text = _describe(problem) if isinstance(problem, dict) else " ".join(map(str, problem))
        parts.append(f"{OSDI_NAMES.get(field, field)}: {text}")
    return "; ".join(parts)


def _object(value, label: str) -> dict:
    if not isinstance(value, dict):
        raise OsdiError(400, f"{label} must be a JSON object.")
    return value


def _list(value, label: str) -> list:
    if not isinstance(value, list):
        raise OsdiError(400, f"{label} must be a JSON array.")
    return value


def _names(value, label: str) -> list[str]:
    if value is None:
        return []
    names = _list(value, label)
    if not all(isinstance(n, str) and n.strip() for n in names):
        raise OsdiError(400, f"{label} must be an array of tag names (none blank).")
    return names


def _text_or_none(value, label: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise OsdiError(400, f"{label} must be a string.")
    return value
