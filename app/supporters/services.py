"""Supporter services: plain functions callable from views, jobs, the CLI and tests."""

from __future__ import annotations

import functools

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError

from app.api.pagination import paginate
from app.db import dialect_name
from app.errors import Conflict, Invalid
from app.extensions import db
from app.security import parse_id
from app.supporters.emails import (
    InvalidSupporterData,
    email_for_lookup,
    email_hash,
    normalise_email,
)
from app.supporters.models import (
    STANDARD_FIELDS,
    CustomField,
    ErasedEmail,
    ListMemberCount,
    ListMembership,
    MailingList,
    SubscriptionChange,
    SubscriptionStatus,
    Supporter,
    SupporterTag,
    Tag,
    may_be_mailed,
)


def change_status(
    supporter: Supporter,
    new_status: SubscriptionStatus,
    *,
    channel: str,
    actor: str | None = None,
    detail: str | None = None,
) -> bool:
    """Set a supporter's subscription status and record it in the consent history.

    Return False (and record nothing) when the status is already `new_status`. Does not commit.
    """
    new_status = SubscriptionStatus(new_status)
    if supporter.status == new_status:
        return False
    supporter.history.append(
        SubscriptionChange(
            old_status=supporter.status,
            new_status=new_status,
            channel=channel,
            actor=actor,
            detail=detail,
        )
    )
    supporter.status = new_status
    return True


PROFILE_FIELDS = tuple(f for f in STANDARD_FIELDS if f != "email")


class SupporterConflict(Conflict):
    """A request that clashes with stored state (duplicate, refused resubscription …)."""

    def __init__(self, code: str, message: str, details: dict | None = None):
        super().__init__(message, details, code=code)


def _race_is_a_conflict(service):
    """Report a unique key lost to a concurrent save (same email, same new tag) as a conflict."""

    @functools.wraps(service)
    def refusing_races(*args, **kwargs):
        try:
            return service(*args, **kwargs)
        except IntegrityError as exc:
            db.session.rollback()  # the failed flush left the session unusable
            raise SupporterConflict(
                "conflict", "That clashes with a record saved at the same time."
            ) from exc

    return refusing_races


def find_by_email(email: str) -> Supporter | None:
    return db.session.scalar(select(Supporter).where(Supporter.email == email))


@_race_is_a_conflict
def upsert_supporter(data: dict, *, actor: str, channel: str = "api") -> tuple[Supporter, bool]:
    """Create the supporter with data["email"] or update the existing one; return (it, created).

    Never resubscribes a suppressed address: not through a missing status, and not through a
    re-created one whose erased hash remembers the opt-out, unless `consent` is given.
    """
    email = normalise_email(data["email"])
    lists_by_name(data.get("lists") or ())  # refuse unknown lists before changing anything
    supporter = find_by_email(email)
    if supporter is not None:
        update_supporter(supporter, {k: v for k, v in data.items() if k != "email"}, actor=actor)
        return supporter, False

    wanted = SubscriptionStatus(data.get("status") or SubscriptionStatus.SUBSCRIBED)
    consent = data.get("consent")
    erased = db.session.get(ErasedEmail, email_hash(email))
    # Record the first status before anything flushes: a flush would apply the column default
    # and change_status would then see nothing to record.
    supporter = Supporter(email=email, custom_fields={})
    if erased is not None and wanted == SubscriptionStatus.SUBSCRIBED and not consent:
        change_status(
            supporter,
            erased.status,
            channel=channel,
            actor=actor,
            detail="re-created after erasure; the earlier opt-out still applies",
        )
    else:
        if erased is not None:
            db.session.delete(erased)
        change_status(
            supporter,
            wanted,
            channel=consent["channel"] if consent else channel,
            actor=actor,
            detail=consent.get("detail") if consent else "created",
        )
    db.session.add(supporter)
    _apply_profile(supporter, data)
    _apply_groups(supporter, data)
    db.session.flush()
    return supporter, True


@_race_is_a_conflict
def update_supporter(supporter: Supporter, data: dict, *, actor: str) -> Supporter:
    """Apply the given fields (absent ones stay as they are); does not commit."""
    lists_by_name(data.get("lists") or ())  # refuse unknown lists before changing anything
    if data.get("email") is not None:
        email = normalise_email(data["email"])
        if email != supporter.email and find_by_email(email) is not None:
            raise SupporterConflict(
                "duplicate_email", "Another supporter already has that address.", {"email": email}
            )
    else:
        email = supporter.email
    # The status is checked (and may be refused) before any field changes.
    if data.get("status") is not None:
        set_status(supporter, data["status"], consent=data.get("consent"), actor=actor)
    supporter.email = email
    _apply_profile(supporter, data)
    _apply_groups(supporter, data)
    db.session.flush()
    return supporter


def set_status(supporter: Supporter, status, *, consent: dict | None, actor: str) -> bool:
    """Change status on request; a suppressed supporter is resubscribed only with their consent."""
    status = SubscriptionStatus(status)
    if status == SubscriptionStatus.SUBSCRIBED and supporter.is_suppressed and not consent:
        raise SupporterConflict(
            "resubscribe_requires_consent",
            f"This supporter is {supporter.status.value}; only their own opt-in may resubscribe "
            "them. Send `consent` with the channel and detail of that opt-in.",
            {"status": supporter.status.value},
        )
    if consent:
        return change_status(
            supporter, status, channel=consent["channel"], actor=actor, detail=consent.get("detail")
        )
    return change_status(supporter, status, channel="api", actor=actor)


def _apply_profile(supporter: Supporter, data: dict) -> None:
    for name in PROFILE_FIELDS:
        if name in data:
            setattr(supporter, name, data[name] or None)
    custom = data.get("custom_fields")
    if custom:
        merged = dict(supporter.custom_fields or {})
        for key, value in custom.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        supporter.custom_fields = merged  # a new dict, so the JSON column is seen as changed
        register_custom_fields([k for k, v in custom.items() if v is not None])


def _apply_groups(supporter: Supporter, data: dict) -> None:
    if data.get("lists"):
        add_to_lists(supporter, data["lists"])
    if data.get("tags"):
        add_tags(supporter, data["tags"])


def register_custom_fields(names) -> None:
    """Remember custom field names so templates can be checked against them."""
    names = sorted(set(names))
    if not names:
        return
    known = set(db.session.scalars(select(CustomField.name).where(CustomField.name.in_(names))))
    for name in names:
        if name not in known:
            if dialect_name(db.session) == "postgresql":
                db.session.execute(
                    pg_insert(CustomField).values(name=name).on_conflict_do_nothing()
                )
            else:
                db.session.add(CustomField(name=name))


def lists_by_name(names) -> list[MailingList]:
    """Return the named lists, or raise InvalidSupporterData naming those that do not exist."""
    names = sorted({n.strip() for n in names if n and n.strip()})
    found = {
        m.name: m
        for m in db.session.scalars(select(MailingList).where(MailingList.name.in_(names)))
    }
    missing = [n for n in names if n not in found]
    if missing:
        raise InvalidSupporterData(
            "Unknown lists; create them first.",
            {"lists": [f"No list named {n!r}." for n in missing]},
        )
    return [found[n] for n in names]


def tags_by_name(names, *, create: bool = True) -> list[Tag]:
    """Return the named tags, creating missing ones (tags are cheap, lists are not)."""
    names = sorted({n.strip() for n in names if n and n.strip()})
    found = {t.name: t for t in db.session.scalars(select(Tag).where(Tag.name.in_(names)))}
    for name in names:
        if name not in found and create:
            found[name] = Tag(name=name)
            db.session.add(found[name])
    return [found[n] for n in names if n in found]


def add_to_lists(supporter: Supporter, names) -> None:
    for mailing_list in lists_by_name(names):
        if mailing_list not in supporter.lists:
            supporter.lists.append(mailing_list)


def add_tags(supporter: Supporter, names) -> None:
    for tag in tags_by_name(names):
        if tag not in supporter.tags:
            supporter.tags.append(tag)


def remove_tag(supporter: Supporter, name: str) -> bool:
    """Untag the supporter; return False when they did not have the tag."""
    for tag in supporter.tags:
        if tag.name == name:
            supporter.tags.remove(tag)
            return True
    return False


def add_list_members(mailing_list: MailingList, supporter_ids=(), emails=()) -> dict:
    """Add supporters (by id or address) to a list; report what was added and what was unknown."""
    ids = set(supporter_ids)
    normalised = {email_for_lookup(e): e for e in emails}
    by_email = dict(
        db.session.execute(
            select(Supporter.email, Supporter.id).where(Supporter.email.in_(list(normalised)))
        ).all()
    )
    found_ids = set(db.session.scalars(select(Supporter.id).where(Supporter.id.in_(list(ids)))))
    wanted = found_ids | set(by_email.values())
    present = set(
        db.session.scalars(
            select(ListMembership.supporter_id).where(
                ListMembership.list_id == mailing_list.id,
                ListMembership.supporter_id.in_(list(wanted)),
            )
        )
    )
    for supporter_id in sorted(wanted - present):
        db.session.add(ListMembership(list_id=mailing_list.id, supporter_id=supporter_id))
    db.session.flush()
    return {
        "added": len(wanted - present),
        "already_members": len(present),
        "not_found": {
            "supporter_ids": sorted(ids - found_ids),
            "emails": sorted(raw for norm, raw in normalised.items() if norm not in by_email),
        },
    }


def remove_list_member(mailing_list: MailingList, supporter_id: int) -> bool:
    result = db.session.execute(
        delete(ListMembership).where(
            ListMembership.list_id == mailing_list.id, ListMembership.supporter_id == supporter_id
        )
    )
    return result.rowcount > 0


def member_counts() -> dict[int, tuple[int, int]]:
    """Map list id to (members, subscribed members); lists without members are left out.

    On PostgreSQL these are the counters its triggers keep (ListMemberCount, migration 0015):
    a few rows per list, exact in this transaction, where counting is a second at 1,000,000
    memberships. SQLite (a local run's few thousand) counts.
    """
    if dialect_name(db.session) != "postgresql":
        return count_list_members()
    rows = db.session.execute(
        select(
            ListMemberCount.list_id,
            func.sum(ListMemberCount.members),
            func.sum(ListMemberCount.subscribed),
        ).group_by(ListMemberCount.list_id)
    )
    # A list whose members all left keeps its counter rows, summing to nothing.
    return {list_id: (int(total), int(subs)) for list_id, total, subs in rows if total or subs}


def count_list_members() -> dict[int, tuple[int, int]]:
    """Map list id to (members, subscribed members), counted from every membership."""
    subscribed = func.count().filter(may_be_mailed())
    rows = db.session.execute(
        select(ListMembership.list_id, func.count(), subscribed)
        .join(Supporter, Supporter.id == ListMembership.supporter_id)
        .group_by(ListMembership.list_id)
    )
    return {list_id: (total, subs) for list_id, total, subs in rows}


def tag_counts() -> dict[int, int]:
    rows = db.session.execute(
        select(SupporterTag.tag_id, func.count()).group_by(SupporterTag.tag_id)
    )
    return dict(rows.all())


def search_supporters(query: dict) -> dict:
    """Return a page of supporters, oldest first, matching the email, status, list and tag given.

    `query` is the loaded SupporterQuerySchema: the filters plus `page` and `page_size`.
    """
    stmt = select(Supporter).order_by(Supporter.id)
    if query.get("email"):
        stmt = stmt.where(Supporter.email == email_for_lookup(query["email"]))
    if query.get("status"):
        stmt = stmt.where(Supporter.status == query["status"])
    if query.get("list"):
        list_id = resolve_id_or_name(MailingList, query["list"], "list")
        stmt = stmt.where(
            select(ListMembership)
            .where(ListMembership.supporter_id == Supporter.id, ListMembership.list_id == list_id)
            .exists()
        )
    if query.get("tag"):
        tag_id = resolve_id_or_name(Tag, query["tag"], "tag")
        stmt = stmt.where(
            select(SupporterTag)
            .where(SupporterTag.supporter_id == Supporter.id, SupporterTag.tag_id == tag_id)
            .exists()
        )
    return paginate(stmt, query)


def resolve_id_or_name(model, value: str, label: str) -> int:
    """Return the id of the list or tag `value` names (by id first, then by name), or raise."""
    value = value.strip()
    as_id = parse_id(value)
    if as_id is not None and db.session.get(model, as_id) is not None:
        return as_id
    found = db.session.scalar(select(model.id).where(model.name == value))
    if found is None:
        raise Invalid(f"Unknown {label}.", {label: [f"No {label} {value!r}."]})
    return found


def replace_groups(supporter: Supporter, *, list_ids, tag_names) -> None:
    """Make the supporter's lists and tags exactly these (the staff edit form); does not commit.

    Unknown list ids raise InvalidSupporterData; unknown tag names are created, as elsewhere.
    """
    wanted_ids = sorted(set(list_ids))
    lists = list(db.session.scalars(select(MailingList).where(MailingList.id.in_(wanted_ids))))
    missing = sorted(set(wanted_ids) - {m.id for m in lists})
    if missing:
        raise InvalidSupporterData(
            "Unknown lists.", {"lists": [f"No list with id {i}." for i in missing]}
        )
    supporter.lists = sorted(lists, key=lambda m: m.name)
    supporter.tags = tags_by_name(tag_names)


def custom_field_names() -> list[str]:
    """Every custom field name seen on some supporter, by name."""
    return list(db.session.scalars(select(CustomField.name).order_by(CustomField.name)))
