"""The segment engine: a saved definition (plain data) becomes one SQL query over supporters.

Lists and tags are tested with EXISTS / NOT EXISTS against the membership tables, whose
primary keys lead with list_id / tag_id, so PostgreSQL answers them as semi/anti joins from
the index instead of joining every supporter to every membership.

Behaviour (acted on a campaign, opened a mailing …) is in the tables of higher layers, which
this one must not import: each owning layer registers its condition types in behaviours.py,
and create_app wires them in once (app/routes.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, datetime

from marshmallow import ValidationError, fields, validate, validates_schema
from sqlalchemy import ColumnElement, Select, and_, exists, false, func, or_, select, text, true

from app.api.schemas import ClarionSchema as Schema
from app.db import dialect_name
from app.errors import Invalid
from app.extensions import db
from app.supporters.behaviours import BEHAVIOUR_LIMIT, BehaviourSchema, behaviour_type
from app.supporters.models import (
    ListMembership,
    MailingList,
    Segment,
    SubscriptionStatus,
    Supporter,
    SupporterTag,
    Tag,
    may_be_mailed,
)

TEXT_FIELDS = ("country", "language", "postcode", "source", "first_name", "last_name", "email")
DATE_FIELDS = ("created_at",)
TEXT_OPS = ("eq", "neq", "in", "contains", "starts_with", "is_empty", "not_empty")
DATE_OPS = ("before", "after")
CUSTOM_PREFIX = "custom."
CUSTOM_NAME = re.compile(r"^[\w\- ]{1,100}$")
IN_LIMIT = 1000


# Which mailings still use a segment is the mailings domain's to answer: it sits above this one
# and keeps the segment ids in its audiences. create_app wires its answer in (app/routes.py).
_segment_users: Callable[[int], list[int]] | None = None


def answer_segment_users(answer: Callable[[int], list[int]]) -> None:
    """Set the function that lists the unfinished mailings using a segment."""
    global _segment_users
    _segment_users = answer


def segment_users(segment_id: int) -> list[int]:
    """Return the ids of the unfinished mailings that use a segment (it must not be deleted)."""
    if _segment_users is None:
        raise RuntimeError("Nothing answers which mailings use a segment: see app/routes.py.")
    return _segment_users(segment_id)


class SegmentDefinitionError(Invalid, ValueError):
    """A segment definition that cannot be used; `details` maps fields to messages."""


class ConditionSchema(Schema):
    field = fields.Str(
        required=True,
        metadata={
            "description": "One of " + ", ".join(TEXT_FIELDS + DATE_FIELDS) + " or custom.<name>."
        },
    )
    op = fields.Str(required=True, validate=validate.OneOf(TEXT_OPS + DATE_OPS))
    value = fields.Raw(
        allow_none=True,
        metadata={
            "description": "A string; a list of strings for `in`; an ISO date or datetime for "
            "`before`/`after` (strictly earlier/later; a date means 00:00 UTC); none for "
            "`is_empty`/`not_empty`. Text comparisons ignore case; `neq` also matches empty."
        },
    )

    @validates_schema
    def check_value_fits_op(self, data, **kwargs):
        name, op, value = data["field"], data["op"], data.get("value")
        if name.startswith(CUSTOM_PREFIX):
            if not CUSTOM_NAME.match(name[len(CUSTOM_PREFIX) :]):
                raise ValidationError(
                    "Custom field names are letters, digits, _ - and space.", "field"
                )
        elif name not in TEXT_FIELDS + DATE_FIELDS:
            raise ValidationError(f"Unknown field {name!r}.", "field")
        allowed = DATE_OPS if name in DATE_FIELDS else TEXT_OPS
        if op not in allowed:
            raise ValidationError(f"{op!r} cannot be used on {name}; use one of {allowed}.", "op")
        if op in ("is_empty", "not_empty"):
            if value is not None:
                raise ValidationError(f"{op!r} takes no value.", "value")
        elif op == "in":
            if (
                not isinstance(value, list)
                or not value
                or len(value) > IN_LIMIT
                or not all(isinstance(v, str | int | float) for v in value)
            ):
                raise ValidationError(f"'in' needs a list of 1-{IN_LIMIT} strings.", "value")
        elif op in DATE_OPS:
            if _parse_instant(value) is None:
                raise ValidationError("Give an ISO 8601 date or datetime.", "value")
        elif not isinstance(value, str | int | float) or isinstance(value, bool) or value == "":
            raise ValidationError(f"{op!r} needs a non-empty string value.", "value")


def _ids(description: str):
    return fields.List(
        fields.Int(strict=True),
        load_default=list,
        validate=validate.Length(max=IN_LIMIT),
        metadata={"description": description},
    )


class SegmentDefinitionSchema(Schema):
    include_lists = _ids("Members of ANY of these list ids (no include lists: no list filter).")
    exclude_lists = _ids("Not a member of any of these list ids.")
    include_tags = _ids("Having ANY of these tag ids.")
    exclude_tags = _ids("Having none of these tag ids.")
    conditions = fields.List(fields.Nested(ConditionSchema), load_default=list)
    behaviour = fields.List(
        fields.Nested(BehaviourSchema),
        load_default=list,
        validate=validate.Length(max=BEHAVIOUR_LIMIT),
        metadata={
            "description": "Behaviour conditions; every one must hold, whatever `match` says."
        },
    )
    match = fields.Str(
        load_default="all",
        validate=validate.OneOf(("all", "any")),
        metadata={"description": "Whether every condition or any one must hold."},
    )
    statuses = fields.List(
        fields.Str(validate=validate.OneOf([s.value for s in SubscriptionStatus])),
        load_default=lambda: [SubscriptionStatus.SUBSCRIBED.value],
        validate=validate.Length(min=1),
        metadata={"description": "Subscription statuses to include; default subscribed only."},
    )


_schema = SegmentDefinitionSchema()


def normalise_definition(definition) -> dict:
    """Check the shape of a definition and fill in defaults, without touching the database."""
    if not isinstance(definition, dict):
        raise SegmentDefinitionError("A segment definition is a JSON object.")
    try:
        data = _schema.load(definition)
    except ValidationError as exc:
        raise SegmentDefinitionError("The segment definition is invalid.", exc.messages) from exc
    for key in ("include_lists", "exclude_lists", "include_tags", "exclude_tags", "statuses"):
        data[key] = sorted(set(data[key]))
    for condition in data["conditions"]:
        condition.setdefault("value", None)
    data["behaviour"] = [
        {"type": item["type"], **{name: item[name] for name in behaviour_type(item["type"]).params}}
        for item in data["behaviour"]
    ]
    return data


def validate_definition(definition) -> dict:
    """Return the normalised definition, or raise SegmentDefinitionError (also for unknown ids)."""
    data = normalise_definition(definition)
    details = {}
    for key, model in (
        ("include_lists", MailingList),
        ("exclude_lists", MailingList),
        ("include_tags", Tag),
        ("exclude_tags", Tag),
    ):
        missing = _missing_ids(model, data[key])
        if missing:
            details[key] = [f"No {model.__tablename__[:-1]} with id {i}." for i in missing]
    behaviour_problems = {}
    for index, item in enumerate(data["behaviour"]):
        problems = behaviour_type(item["type"]).check(item)
        if problems:
            behaviour_problems[index] = problems
    if behaviour_problems:
        details["behaviour"] = behaviour_problems
    if details:
        if "behaviour" not in details:
            message = "The segment refers to lists or tags that do not exist."
        elif len(details) == 1:
            message = "A behaviour condition refers to something that does not exist."
        else:
            message = "The segment refers to lists, tags and records that do not exist."
        raise SegmentDefinitionError(message, details)
    return data


def _missing_ids(model, ids: list[int]) -> list[int]:
    if not ids:
        return []
    found = set(db.session.scalars(select(model.id).where(model.id.in_(ids))))
    return [i for i in ids if i not in found]


def segment_query(definition: dict) -> Select:
    """Select the ids of the supporters a (validated) definition matches."""
    data = normalise_definition(definition)
    # Never correlate with an enclosing query over supporters (see audience_query's IN).
    return (
        select(Supporter.id).where(*_criteria(data), _status_in(data["statuses"])).correlate(None)
    )


def count_segment(definition: dict) -> int:
    """Count the supporters a definition matches right now."""
    stmt = select(func.count()).select_from(segment_query(definition).subquery())
    if dialect_name(db.session) != "postgresql":
        return db.session.scalar(stmt)
    with _prefer_ordered_index_scans():
        return db.session.scalar(stmt)


@contextmanager
def _prefer_ordered_index_scans():
    """Plan this transaction's next query as merge joins over index-only scans.

    With default costs PostgreSQL hashes every membership row (spilling to disk on a large
    list) and splits that over parallel workers; walking the covering indexes in supporter id
    order is 3-4x faster on a million supporters (bench/bench_segment.py). The settings are
    local to the transaction and put back afterwards.
    """
    names = {"a": "random_page_cost", "b": "max_parallel_workers_per_gather"}
    previous = db.session.execute(
        text("SELECT current_setting(:a), current_setting(:b)"), names
    ).one()
    db.session.execute(text("SELECT set_config(:a, '1.1', true), set_config(:b, '0', true)"), names)
    try:
        yield
    finally:
        db.session.execute(
            text("SELECT set_config(:a, :va, true), set_config(:b, :vb, true)"),
            {**names, "va": previous[0], "vb": previous[1]},
        )


def audience_query(
    include_lists=(),
    exclude_lists=(),
    include_tags=(),
    exclude_tags=(),
    segment_ids=(),
    exclude_segment_ids=(),
    *,
    mailable_only: bool = True,
) -> Select:
    """Select subscribed supporters in any included list, tag or saved segment, minus exclusions.

    Saved segments add their matches (restricted to subscribed, whatever the segment says);
    the excluded lists, tags and segments apply to everyone. No includes at all selects nobody.
    `mailable_only=False` leaves out the "may be mailed" condition (the pre-send check counts
    who the audience would have reached but may not).
    """
    includes: list[ColumnElement] = []
    if include_lists:
        includes.append(_in_lists(include_lists))
    if include_tags:
        includes.append(_has_tags(include_tags))
    for segment_id in sorted(set(segment_ids)):
        includes.append(Supporter.id.in_(_saved_segment_query(segment_id, "segments")))
    criteria = [or_(*includes) if includes else false()]
    if exclude_lists:
        criteria.append(~_in_lists(exclude_lists))
    if exclude_tags:
        criteria.append(~_has_tags(exclude_tags))
    for segment_id in sorted(set(exclude_segment_ids)):
        # NOT EXISTS, not NOT IN: PostgreSQL turns it into an anti-join over the segment's
        # matches, where NOT IN (NULL-aware) falls back to a subplan once they outgrow work_mem.
        matches = _saved_segment_query(segment_id, "exclude_segments").subquery()
        criteria.append(~exists().where(matches.c.id == Supporter.id))
    if mailable_only:
        criteria.insert(0, may_be_mailed())
    return select(Supporter.id).where(*criteria)


def _saved_segment_query(segment_id: int, key: str) -> Select:
    segment = db.session.get(Segment, segment_id)
    if segment is None:
        raise SegmentDefinitionError(
            "The audience refers to a segment that does not exist.",
            {key: [f"No segment with id {segment_id}."]},
        )
    return segment_query(segment.definition)


def _status_in(statuses) -> ColumnElement:
    values = [SubscriptionStatus(s) for s in statuses]
    return Supporter.status == values[0] if len(values) == 1 else Supporter.status.in_(values)


def _in_lists(list_ids) -> ColumnElement:
    return exists().where(
        ListMembership.supporter_id == Supporter.id, ListMembership.list_id.in_(list(list_ids))
    )


def _has_tags(tag_ids) -> ColumnElement:
    return exists().where(
        SupporterTag.supporter_id == Supporter.id, SupporterTag.tag_id.in_(list(tag_ids))
    )


def _criteria(data: dict) -> list[ColumnElement]:
    criteria = []
    if data["include_lists"]:
        criteria.append(_in_lists(data["include_lists"]))
    if data["exclude_lists"]:
        criteria.append(~_in_lists(data["exclude_lists"]))
    if data["include_tags"]:
        criteria.append(_has_tags(data["include_tags"]))
    if data["exclude_tags"]:
        criteria.append(~_has_tags(data["exclude_tags"]))
    if data["conditions"]:
        parts = [_condition(c) for c in data["conditions"]]
        criteria.append(and_(*parts) if data["match"] == "all" else or_(*parts))
    for item in data["behaviour"]:
        criteria.append(behaviour_type(item["type"]).build(item))
    return criteria or [true()]


def _column(name: str):
    if name.startswith(CUSTOM_PREFIX):
        return Supporter.custom_fields[name[len(CUSTOM_PREFIX) :]].as_string()
    return getattr(Supporter, name)


def _condition(condition: dict) -> ColumnElement:
    op, value = condition["op"], condition["value"]
    column = _column(condition["field"])
    if op == "before":
        return column < _parse_instant(value)
    if op == "after":
        return column > _parse_instant(value)
    empty = or_(column.is_(None), column == "")
    if op == "is_empty":
        return empty
    if op == "not_empty":
        return ~empty
    lowered = func.lower(column)
    if op == "in":
        return lowered.in_([str(v).lower() for v in value])
    text = str(value).lower()
    if op == "eq":
        return lowered == text
    if op == "neq":
        # "country is not GB" should keep the supporters whose country is unknown.
        return or_(column.is_(None), lowered != text)
    pattern = _escape_like(text)
    if op == "contains":
        return lowered.like(f"%{pattern}%", escape="\\")
    return lowered.like(f"{pattern}%", escape="\\")


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _parse_instant(value) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)  # a bare date is 00:00 that day
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
