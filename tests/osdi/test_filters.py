"""The OData filters OSDI clients send, read into conditions or refused with a 400."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.osdi.errors import OsdiError
from app.osdi.filters import Condition, parse_filter


def test_dates_addresses_and_and():
    assert parse_filter("modified_date gt '2024-01-01'") == [
        Condition("modified_date", "gt", datetime(2024, 1, 1, tzinfo=UTC))
    ]
    assert parse_filter("created_date LT '2024-01-31T12:30:00+02:00' and email_address eq 'a@b.org'") == [
        Condition("created_date", "lt", datetime.fromisoformat("2024-01-31T12:30:00+02:00")),
        Condition("email_address", "eq", "a@b.org"),
    ]  # fmt: skip
    assert parse_filter("modified_date gt '2024-01-01T00:00:00Z'")[0].value.tzinfo is not None
    assert parse_filter("email_address eq 'o''brien and co@example.org'") == [
        Condition("email_address", "eq", "o'brien and co@example.org")
    ]
    assert parse_filter(None) == [] and parse_filter("  ") == []


@pytest.mark.parametrize(
    "text",
    [
        "given_name eq 'Ada'",
        "modified_date eq '2024-01-01'",
        "email_address gt 'a'",
        "modified_date gt 2024-01-01",
        "modified_date gt 'yesterday'",
        "modified_date gt '2024-01-01' or email_address eq 'a@b.org'",
        "modified_date gt '2024-01-01' and",
        "'; DROP TABLE supporters; --",
        "email_address eq 'unterminated",
        "x" * 1001,
    ],
)
def test_anything_else_is_a_400_that_says_what_is_supported(text):
    with pytest.raises(OsdiError) as refused:
        parse_filter(text)
    assert refused.value.status == 400
