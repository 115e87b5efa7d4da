"""The OData `filter` Action Network clients send: `modified_date gt '2024-01-01'` and friends.

Supported: `modified_date` and `created_date` with `gt` or `lt` and a date or a date-time (UTC
unless it says otherwise), `email_address eq '…'`, joined with `and`. Anything else is a 400
that says what is supported, never a guess that would sync the wrong people.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from app.osdi.errors import OsdiError

# One condition: a field, an operator and a quoted value ('' escapes a quote, as in OData).
CONDITION = re.compile(r"\s*(\w+)\s+(\w+)\s+'((?:[^']|'')*)'\s*", re.ASCII)
AND = re.compile(r"\s+and\s+", re.IGNORECASE | re.ASCII)
OPERATORS = {"modified_date": ("gt", "lt"), "created_date": ("gt", "lt"), "email_address": ("eq",)}
MAX_FILTER_LENGTH = 1000

SUPPORTED = (
    "Supported: modified_date gt|lt '<date>', created_date gt|lt '<date>' and "
    "email_address eq '<address>', joined with 'and'."
)


@dataclass(frozen=True)
class Condition:
    field: str
    operator: str
    value: datetime | str


def parse_filter(text: str | None) -> list[Condition]:
    """Return the conditions of an OData filter, or raise OsdiError (400) naming the problem."""
    if text is None or not text.strip():
        return []
    if len(text) > MAX_FILTER_LENGTH:
        raise OsdiError(400, f"The filter is longer than {MAX_FILTER_LENGTH} characters.")
    conditions = []
    for part in _split_and(text):
        match = CONDITION.fullmatch(part)
        if match is None:
            raise OsdiError(400, f"Cannot read the filter condition {part.strip()!r}. {SUPPORTED}")
        field, operator, raw = match.group(1), match.group(2).lower(), match.group(3)
        if field not in OPERATORS or operator not in OPERATORS[field]:
            raise OsdiError(400, f"Cannot filter on {field} {operator}. {SUPPORTED}")
        value = raw.replace("''", "'")
        conditions.append(
            Condition(field, operator, value if field == "email_address" else _moment(value))
        )
    return conditions


def _split_and(text: str) -> list[str]:
    """Split on `and` outside quoted values."""
    parts, start, index, quoted = [], 0, 0, False
    while index < len(text):
        if text[index] == "'":
            quoted = not quoted
        elif not quoted and (found := AND.match(text, index)):
            parts.append(text[start:index])
            start = index = found.end()
            continue
        index += 1
    parts.append(text[start:])
    return parts


def _moment(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise OsdiError(
            400, f"{value!r} is not a date; use e.g. '2024-01-31' or '2024-01-31T12:00:00Z'."
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
