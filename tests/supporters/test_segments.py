"""The segment engine against a small, hand-counted set of supporters."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.supporters.models import MailingList, Segment, SubscriptionStatus, Supporter, Tag
from app.supporters.segments import (
    SegmentDefinitionError,
    audience_query,
    count_segment,
    segment_query,
    validate_definition,
)

S = SubscriptionStatus


@pytest.fixture
def world():
    """Seven supporters; see each row for why it is (not) counted."""
    l1, l2 = MailingList(name="L1"), MailingList(name="L2")
    t1, t2 = Tag(name="T1"), Tag(name="T2")
    rows = {
        "a": dict(
            country="GB",
            lists=[l1],
            tags=[t1],
            custom={"ward": "North", "age": 30},
            created="2024-01-10T00:00:00+00:00",
        ),
        "b": dict(
            country="FR", lists=[l2], custom={"ward": "south"}, created="2024-06-01T00:00:00+00:00"
        ),
        "c": dict(lists=[l1, l2], tags=[t2], created="2025-01-01T00:00:00+00:00"),
        "d": dict(
            country="GB", tags=[t1], status=S.UNSUBSCRIBED, created="2024-03-01T00:00:00+00:00"
        ),
        "e": dict(
            country="DE",
            postcode="N1 9GU",
            lists=[l1],
            tags=[t1, t2],
            status=S.BOUNCED,
            created="2023-05-05T00:00:00+00:00",
        ),
        "f": dict(
            first_name="Anna",
            source="petition_2024",
            lists=[l2],
            custom={"ward": ""},
            created="2024-12-31T23:00:00+00:00",
        ),
        "g": dict(source="px2024", created="2025-06-01T00:00:00+00:00"),
    }
    people = {}
    for key, row in rows.items():
        people[key] = Supporter(
            email=f"{key}@example.org",
            country=row.get("country"),
            postcode=row.get("postcode"),
            first_name=row.get("first_name"),
            source=row.get("source"),
            custom_fields=row.get("custom", {}),
            status=row.get("status", S.SUBSCRIBED),
            created_at=datetime.fromisoformat(row["created"]),
            lists=row.get("lists", []),
            tags=row.get("tags", []),
        )
    db.session.add_all([l1, l2, t1, t2, *people.values()])
    db.session.flush()
    return {
        "L1": l1.id,
        "L2": l2.id,
        "T1": t1.id,
        "T2": t2.id,
        **{k: p.id for k, p in people.items()},
    }


def matched(world, definition) -> set[str]:
    ids = set(db.session.scalars(segment_query(validate_definition(definition))))
    return {key for key, value in world.items() if len(key) == 1 and value in ids}


def cond(field, op, value=None) -> dict:
    return {"field": field, "op": op, "value": value}


def test_empty_definition_is_every_subscribed_supporter(world):
    assert matched(world, {}) == {"a", "b", "c", "f", "g"}
    assert count_segment({}) == 5


def test_lists_and_tags(world):
    w = world
    assert matched(w, {"include_lists": [w["L1"]]}) == {"a", "c"}
    assert matched(w, {"include_lists": [w["L1"], w["L2"]]}) == {"a", "b", "c", "f"}
    assert matched(w, {"include_lists": [w["L1"], w["L2"]], "exclude_tags": [w["T1"]]}) == {
        "b",
        "c",
        "f",
    }
    assert matched(w, {"include_tags": [w["T2"]]}) == {"c"}
    assert matched(w, {"include_tags": [w["T2"]], "statuses": ["subscribed", "bounced"]}) == {
        "c",
        "e",
    }
    assert matched(w, {"exclude_lists": [w["L2"]]}) == {"a", "g"}
    both = {"include_lists": [w["L1"]], "include_tags": [w["T1"]]}
    assert matched(w, both) == {"a"}


def test_text_conditions(world):
    w = world
    assert matched(w, {"conditions": [cond("country", "eq", "gb")]}) == {"a"}
    assert matched(
        w, {"conditions": [cond("country", "eq", "gb")], "statuses": ["subscribed", "unsubscribed"]}
    ) == {"a", "d"}
    assert matched(w, {"conditions": [cond("country", "neq", "GB")]}) == {"b", "c", "f", "g"}
    assert matched(w, {"conditions": [cond("country", "in", ["fr", "DE"])]}) == {"b"}
    assert matched(w, {"conditions": [cond("country", "is_empty")]}) == {"c", "f", "g"}
    assert matched(w, {"conditions": [cond("country", "not_empty")]}) == {"a", "b"}
    assert matched(w, {"conditions": [cond("first_name", "starts_with", "an")]}) == {"f"}
    assert matched(w, {"conditions": [cond("email", "contains", "G@EXAMPLE")]}) == {"g"}
    # "_" and "%" are literal, not LIKE wildcards: "px2024" does not contain "_20".
    assert matched(w, {"conditions": [cond("source", "contains", "_20")]}) == {"f"}
    assert matched(w, {"conditions": [cond("source", "contains", "%")]}) == set()


def test_custom_field_conditions(world):
    w = world
    assert matched(w, {"conditions": [cond("custom.ward", "eq", "NORTH")]}) == {"a"}
    assert matched(w, {"conditions": [cond("custom.ward", "is_empty")]}) == {"c", "f", "g"}
    assert matched(w, {"conditions": [cond("custom.age", "eq", 30)]}) == {"a"}
    assert matched(w, {"conditions": [cond("custom.ward", "in", ["south", "north"])]}) == {"a", "b"}


def test_date_conditions(world):
    w = world
    assert matched(w, {"conditions": [cond("created_at", "before", "2024-05-01")]}) == {"a"}
    assert matched(w, {"conditions": [cond("created_at", "after", "2024-12-31")]}) == {
        "c",
        "f",
        "g",
    }
    assert matched(
        w, {"conditions": [cond("created_at", "after", "2024-12-31T23:30:00+00:00")]}
    ) == {"c", "g"}


def test_match_any_or_all(world):
    w = world
    conditions = [cond("country", "eq", "FR"), cond("custom.ward", "eq", "north")]
    assert matched(w, {"conditions": conditions, "match": "any"}) == {"a", "b"}
    assert matched(w, {"conditions": conditions}) == set()
    combined = {
        "include_lists": [w["L1"], w["L2"]],
        "exclude_tags": [w["T1"]],
        "conditions": [cond("country", "is_empty")],
        "match": "any",
    }
    assert matched(w, combined) == {"c", "f"}


def test_audience_combines_lists_tags_and_segments(world):
    w = world
    france = Segment(name="France", definition={"conditions": [cond("country", "eq", "FR")]})
    bounced = Segment(name="Bounced", definition={"statuses": ["bounced"]})
    db.session.add_all([france, bounced])
    db.session.flush()

    def audience(**kwargs) -> set[str]:
        ids = set(db.session.scalars(audience_query(**kwargs)))
        return {key for key, value in w.items() if len(key) == 1 and value in ids}

    assert audience(include_lists=[w["L1"]], segment_ids=[france.id]) == {"a", "b", "c"}
    assert audience(include_lists=[w["L1"]], segment_ids=[france.id], exclude_tags=[w["T2"]]) == {
        "a",
        "b",
    }
    assert audience(include_tags=[w["T1"]], exclude_lists=[w["L1"]]) == set()
    assert audience(segment_ids=[bounced.id]) == set()  # only ever subscribed supporters
    assert audience() == set()
    stmt = select(func.count()).select_from(audience_query(include_lists=[w["L2"]]).subquery())
    assert db.session.scalar(stmt) == 3
    with pytest.raises(SegmentDefinitionError):
        audience_query(segment_ids=[999999])


@pytest.mark.parametrize(
    ("definition", "key"),
    [
        ({"include_list": [1]}, "include_list"),
        ({"match": "some"}, "match"),
        ({"statuses": []}, "statuses"),
        ({"statuses": ["maybe"]}, "statuses"),
        ({"include_lists": ["1"]}, "include_lists"),
        ({"conditions": [{"field": "shoe_size", "op": "eq", "value": "9"}]}, "conditions"),
        (
            {"conditions": [{"field": "country", "op": "before", "value": "2024-01-01"}]},
            "conditions",
        ),
        ({"conditions": [{"field": "created_at", "op": "eq", "value": "x"}]}, "conditions"),
        (
            {"conditions": [{"field": "created_at", "op": "after", "value": "yesterday"}]},
            "conditions",
        ),
        ({"conditions": [{"field": "country", "op": "eq"}]}, "conditions"),
        ({"conditions": [{"field": "country", "op": "in", "value": "GB"}]}, "conditions"),
        ({"conditions": [{"field": "country", "op": "is_empty", "value": "x"}]}, "conditions"),
        ({"conditions": [{"field": 'custom.a"b', "op": "eq", "value": "x"}]}, "conditions"),
        ({"conditions": [{"field": "country", "op": "eq", "value": "GB", "x": 1}]}, "conditions"),
    ],
)
def test_invalid_definitions_are_refused_with_details(definition, key):
    with pytest.raises(SegmentDefinitionError) as caught:
        validate_definition(definition)
    assert key in caught.value.details


def test_unknown_list_and_tag_ids_are_refused(world):
    with pytest.raises(SegmentDefinitionError) as caught:
        validate_definition({"include_lists": [world["L1"], 999999], "exclude_tags": [888888]})
    assert set(caught.value.details) == {"include_lists", "exclude_tags"}


def test_validate_normalises(world):
    data = validate_definition({"include_lists": [world["L2"], world["L1"], world["L2"]]})
    assert data["include_lists"] == sorted([world["L1"], world["L2"]])
    assert data["statuses"] == ["subscribed"] and data["match"] == "all"
    assert validate_definition(data) == data
