"""The rows a supporter CSV yields once cleaned: one row, a chunk of them, a rejected row.

Shared by the parser (app/supporters/csvformat.py) and the import's writers, which take a
chunk column by column (app/supporters/import_writers.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from app.supporters.models import SubscriptionStatus

# The profile fields a row may set, in SupporterRow's order; the email is the row's key.
PROFILE_COLUMNS = ("first_name", "last_name", "postcode", "country", "language", "source")


@dataclass(slots=True)
class SupporterRow:
    row_number: int
    email: str
    first_name: str | None = None
    last_name: str | None = None
    postcode: str | None = None
    country: str | None = None
    language: str | None = None
    source: str | None = None
    status: SubscriptionStatus = SubscriptionStatus.SUBSCRIBED
    custom: dict = field(default_factory=dict)

    def merge(self, later: SupporterRow) -> None:
        """Fold a later row for the same address into this one: its non-empty values win."""
        for name in PROFILE_COLUMNS:
            value = getattr(later, name)
            if value is not None:
                setattr(self, name, value)
        if later.status != SubscriptionStatus.SUBSCRIBED:
            self.status = later.status
        self.custom.update(later.custom)
        self.row_number = later.row_number


@dataclass(slots=True)
class SupporterChunk(Sequence):
    """One chunk's clean rows, held column by column, each address once.

    Columns because that is how the rows are cleaned and how PostgreSQL's COPY takes them, with
    no Python object per row; indexing or iterating gives SupporterRow objects all the same.
    None is an empty value.
    """

    row_numbers: list[int]
    email: list[str]
    profile: dict[str, list[str | None]]  # every name in PROFILE_COLUMNS
    status: list[SubscriptionStatus]
    custom: dict[str, list[str | None]]  # custom field name -> values

    def __len__(self) -> int:
        return len(self.email)

    def __getitem__(self, i: int) -> SupporterRow:
        return SupporterRow(
            self.row_numbers[i],
            self.email[i],
            *(self.profile[name][i] for name in PROFILE_COLUMNS),
            status=self.status[i],
            custom={name: values[i] for name, values in self.custom.items() if values[i]},
        )

    @classmethod
    def from_rows(cls, rows: list[SupporterRow], custom_names: list[str]) -> SupporterChunk:
        return cls(
            [r.row_number for r in rows],
            [r.email for r in rows],
            {name: [getattr(r, name) for r in rows] for name in PROFILE_COLUMNS},
            [r.status for r in rows],
            {name: [r.custom.get(name) for r in rows] for name in custom_names},
        )

    def merge_duplicates(self) -> SupporterChunk:
        """Return the chunk with rows repeating an address folded into its first row."""
        if len(set(self.email)) == len(self.email):
            return self  # the usual case, checked without a Python step per row
        merged: dict[str, SupporterRow] = {}
        for row in self:
            if (earlier := merged.get(row.email)) is not None:
                earlier.merge(row)
            else:
                merged[row.email] = row
        return SupporterChunk.from_rows(list(merged.values()), list(self.custom))


@dataclass(slots=True)
class Rejection:
    row_number: int
    reason: str
    raw: str
