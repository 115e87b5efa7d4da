"""The staff directory of supporters: one search box and a few filters, a page at a time.

Built to stay fast at a million supporters. Text matches the start of a field only (an
address, a first or last name, a postcode), each through its own text_pattern_ops index
(migration 0007), so a search is a few index range scans whatever the table's size. Pages are
keyset pages (`id < after`, newest first), never OFFSET. The total is counted no further than
COUNT_CAP: beyond it the page says "more than 5,000". That costs milliseconds, where an exact
count over a million rows (even the segment engine's) takes 150-400 ms on every page view.
(Counting to the cap is itself the dearest part of a broad search: a common surname within a
list of half a million costs ~150 ms at a cap of 10,000; bench/bench_staff_pages.py times it.)
Every statement is planned for its own values: a generic plan for `LIKE $1` cannot use the
prefix indexes and, once psycopg prepares a statement it has run five times, PostgreSQL may
switch to one (a rare surname then took 530 ms instead of 30).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select
from sqlalchemy.orm import lazyload

from app.errors import NotFound
from app.extensions import db
from app.supporters.emails import InvalidEmail, normalise_email
from app.supporters.models import ListMembership, SubscriptionStatus, Supporter, SupporterTag

PAGE_SIZE = 50
COUNT_CAP = 5_000
# Up to this many matches, sorting them all costs less than finding a page by the id index.
FEW_MATCHES = 2_000
MAX_QUERY_LENGTH = 200


@dataclass(frozen=True)
class DirectoryQuery:
    """What staff asked for: free text plus optional list, tag and status filters."""

    text: str = ""
    list_id: int | None = None
    tag_id: int | None = None
    status: SubscriptionStatus | None = None
    after: int | None = None  # the last id of the previous page

    @property
    def is_filtered(self) -> bool:
        return bool(self.text or self.list_id or self.tag_id or self.status)


@dataclass(frozen=True)
class DirectoryPage:
    supporters: list[Supporter]
    next_after: int | None  # None: this is the last page
    total: int
    total_is_lower_bound: bool  # True: there are more than `total` matches


def search_directory(query: DirectoryQuery) -> DirectoryPage:
    """Return one page of the supporters matching `query`, newest first, and how many match."""
    _plan_for_these_values()
    total, lower_bound = count_matches(query)
    stmt = (
        _matching(query)
        # The page shows no lists or tags: two queries per page saved.
        .options(lazyload(Supporter.lists), lazyload(Supporter.tags))
        .order_by(_newest_first(few_matches=not lower_bound and total <= FEW_MATCHES))
        .limit(PAGE_SIZE + 1)
    )
    if query.after is not None:
        stmt = stmt.where(Supporter.id < query.after)
    rows = list(db.session.scalars(stmt))
    has_more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return DirectoryPage(
        supporters=rows,
        next_after=rows[-1].id if has_more else None,
        total=total,
        total_is_lower_bound=lower_bound,
    )


def _plan_for_these_values() -> None:
    if db.session.get_bind().dialect.name == "postgresql":
        # Local to the transaction, which ends with the request.
        db.session.execute(select(func.set_config("plan_cache_mode", "force_custom_plan", True)))


def _newest_first(*, few_matches: bool) -> ColumnElement:
    """SQL: the page's order, id descending, chosen so the planner reads the fewest rows.

    Walking the id index newest-first and testing each row finds a page at once when matches
    are common, but a middling search ("jane smith", 0.1 % of everyone) reads ~50,000 rows to
    find 50, and the planner, which underprices the text tests, picks that walk anyway. When
    the count has shown the matches are few, ordering by `id + 0` (which no index provides)
    makes it collect them through the prefix or membership indexes and sort them instead.
    """
    return (Supporter.id + 0).desc() if few_matches else Supporter.id.desc()


def count_matches(query: DirectoryQuery) -> tuple[int, bool]:
    """Return (count, is_lower_bound) for the matches of `query`, ignoring its page."""
    capped = _matching(query).with_only_columns(Supporter.id).limit(COUNT_CAP + 1)
    found = db.session.scalar(select(func.count()).select_from(capped.subquery()))
    return (COUNT_CAP, True) if found > COUNT_CAP else (found, False)


def has_supporters() -> bool:
    """Whether anyone at all is stored (the directory's empty state)."""
    return bool(db.session.scalar(select(exists().where(Supporter.id.is_not(None)))))


def get_supporter(supporter_id: int) -> Supporter:
    """Return the supporter, or raise NotFound."""
    supporter = db.session.get(Supporter, supporter_id)
    if supporter is None:
        raise NotFound(f"No supporter with id {supporter_id}.")
    return supporter


def _matching(query: DirectoryQuery) -> Select:
    stmt = select(Supporter)
    if query.text:
        stmt = stmt.where(text_match(query.text))
    if query.status:
        stmt = stmt.where(Supporter.status == query.status)
    if query.list_id:
        stmt = stmt.where(
            exists().where(
                ListMembership.supporter_id == Supporter.id,
                ListMembership.list_id == query.list_id,
            )
        )
    if query.tag_id:
        stmt = stmt.where(
            exists().where(
                SupporterTag.supporter_id == Supporter.id, SupporterTag.tag_id == query.tag_id
            )
        )
    return stmt


def text_match(raw: str) -> ColumnElement[bool]:
    """SQL: the supporter matches what was typed in the search box.

    A whole valid address is looked up exactly; anything with "@" is an address prefix. One
    word is the start of an address, first name, last name or postcode; several words are a
    first name then a last name ("jane van d"), or a postcode typed with its space.
    """
    text = " ".join(raw.split())[:MAX_QUERY_LENGTH].lower()
    if "@" in text:
        try:
            return Supporter.email == normalise_email(text)
        except InvalidEmail:
            return Supporter.email.like(_prefix(text), escape="\\")
    words = text.split(" ")
    postcode = postcode_key(Supporter.postcode).like(_prefix(text.replace(" ", "")), escape="\\")
    if len(words) == 1:
        return or_(
            Supporter.email.like(_prefix(text), escape="\\"),
            func.lower(Supporter.first_name).like(_prefix(text), escape="\\"),
            func.lower(Supporter.last_name).like(_prefix(text), escape="\\"),
            postcode,
        )
    first, rest = words[0], " ".join(words[1:])
    return or_(
        and_(
            func.lower(Supporter.first_name).like(_prefix(first), escape="\\"),
            func.lower(Supporter.last_name).like(_prefix(rest), escape="\\"),
        ),
        postcode,
    )


def postcode_key(column):
    """SQL: a postcode as searched, lower-cased without spaces (the 0007 index's expression)."""
    return func.lower(func.replace(column, " ", ""))


def _prefix(text: str) -> str:
    # One whole pattern, not `:p || '%'`, so the planner can read its prefix and use the index.
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"
