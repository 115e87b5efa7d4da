"""Lists, tags and saved segments: plain service functions for the API, the CLI and tests.

Nothing here commits; the caller does, so a view can answer a unique-name race with a 409.
"""

from __future__ import annotations

from sqlalchemy import select

from app.api.pagination import paginate
from app.errors import Conflict
from app.extensions import db
from app.supporters.models import MailingList, Segment, Tag
from app.supporters.segments import segment_users, validate_definition
from app.supporters.services import member_counts, tag_counts


def refuse_duplicate_name(model, name: str, label: str, own_id: int | None = None) -> None:
    """Raise Conflict (`duplicate_name`, with the holder's id) if another row has this name."""
    existing = db.session.scalar(select(model.id).where(model.name == name))
    if existing is not None and existing != own_id:
        raise Conflict(
            f"A {label} named {name!r} already exists.", {"id": existing}, code="duplicate_name"
        )


# --- lists -----------------------------------------------------------------------------------


def with_member_counts(mailing_list: MailingList, counts: dict | None = None) -> MailingList:
    """Set `member_count` and `subscribed_count` on a list (counts from member_counts())."""
    counts = member_counts() if counts is None else counts
    mailing_list.member_count, mailing_list.subscribed_count = counts.get(mailing_list.id, (0, 0))
    return mailing_list


def list_lists(page: dict) -> dict:
    """Return a page of lists by name, each with its member counts."""
    envelope = paginate(select(MailingList).order_by(MailingList.name), page)
    counts = member_counts()
    envelope["items"] = [with_member_counts(m, counts) for m in envelope["items"]]
    return envelope


def create_list(data: dict) -> MailingList:
    """Add a new list (names are unique); it has no members yet."""
    name = data["name"].strip()
    refuse_duplicate_name(MailingList, name, "list")
    mailing_list = MailingList(name=name, description=data.get("description"))
    db.session.add(mailing_list)
    return with_member_counts(mailing_list, {})


def update_list(mailing_list: MailingList, data: dict) -> MailingList:
    """Rename a list or change its description."""
    if "name" in data:
        name = data["name"].strip()
        refuse_duplicate_name(MailingList, name, "list", own_id=mailing_list.id)
        mailing_list.name = name
    if "description" in data:
        mailing_list.description = data["description"]
    return mailing_list


# --- tags ------------------------------------------------------------------------------------


def list_tags(page: dict) -> dict:
    """Return a page of tags by name, each with how many supporters have it."""
    envelope = paginate(select(Tag).order_by(Tag.name), page)
    counts = tag_counts()
    for tag in envelope["items"]:
        tag.supporter_count = counts.get(tag.id, 0)
    return envelope


def create_tag(data: dict) -> Tag:
    """Add a new tag (names are unique); nobody has it yet."""
    name = data["name"].strip()
    refuse_duplicate_name(Tag, name, "tag")
    tag = Tag(name=name)
    db.session.add(tag)
    tag.supporter_count = 0
    return tag


# --- segments --------------------------------------------------------------------------------


def list_segments(page: dict) -> dict:
    """Return a page of saved segments by name."""
    return paginate(select(Segment).order_by(Segment.name), page)


def create_segment(data: dict) -> Segment:
    """Save a segment; its list and tag ids must exist."""
    name = data["name"].strip()
    refuse_duplicate_name(Segment, name, "segment")
    segment = Segment(name=name, definition=validate_definition(data["definition"]))
    db.session.add(segment)
    return segment


def update_segment(segment: Segment, data: dict) -> Segment:
    """Rename a segment or replace its definition."""
    if "name" in data:
        name = data["name"].strip()
        refuse_duplicate_name(Segment, name, "segment", own_id=segment.id)
        segment.name = name
    if "definition" in data:
        segment.definition = validate_definition(data["definition"])
    return segment


def delete_segment(segment: Segment) -> None:
    """Delete a segment, unless a mailing that has not finished still uses it (Conflict)."""
    users = segment_users(segment.id)
    if users:
        raise Conflict(
            "Mailings still use this segment.", {"mailing_ids": users}, code="segment_in_use"
        )
    db.session.delete(segment)


# --- for the staff pages: every list and tag at once (there are tens, not millions) ------------


def all_lists() -> list[MailingList]:
    """Every list by name, each with its member counts."""
    counts = member_counts()
    lists = db.session.scalars(select(MailingList).order_by(MailingList.name))
    return [with_member_counts(m, counts) for m in lists]


def all_tags() -> list[Tag]:
    """Every tag by name, each with how many supporters have it."""
    counts = tag_counts()
    tags = list(db.session.scalars(select(Tag).order_by(Tag.name)))
    for tag in tags:
        tag.supporter_count = counts.get(tag.id, 0)
    return tags


def all_segments() -> list[Segment]:
    """Every saved segment by name."""
    return list(db.session.scalars(select(Segment).order_by(Segment.name)))


def delete_list(mailing_list: MailingList) -> None:
    """Delete a list and its memberships (the supporters stay)."""
    db.session.delete(mailing_list)


def rename_tag(tag: Tag, name: str) -> Tag:
    """Rename a tag (names are unique)."""
    name = name.strip()
    refuse_duplicate_name(Tag, name, "tag", own_id=tag.id)
    tag.name = name
    return tag


def delete_tag(tag: Tag) -> None:
    """Delete a tag; the supporters who had it stay, untagged."""
    db.session.delete(tag)


def list_choices() -> list[tuple[int, str]]:
    """(id, name) of every list by name, for a filter or a form: no member counts to compute."""
    return list(
        db.session.execute(select(MailingList.id, MailingList.name).order_by(MailingList.name))
    )


def tag_choices() -> list[tuple[int, str]]:
    """(id, name) of every tag by name."""
    return list(db.session.execute(select(Tag.id, Tag.name).order_by(Tag.name)))
