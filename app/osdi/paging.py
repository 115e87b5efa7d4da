"""Pages by number, as Action Network clients ask for them: `?page=N&per_page=M` (M ≤ 25).

The people collection finds any page without reading the rows before it (the block counters
of app/osdi/models.py); the other collections are small, or are pages of one tag, list or
campaign, and page with OFFSET.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, func, select, text
from sqlalchemy.orm import lazyload

from app.db import dialect_name
from app.extensions import db
from app.osdi.errors import OsdiError
from app.osdi.models import BLOCK_SIZE
from app.security import parse_id
from app.supporters.models import Supporter

MAX_PER_PAGE = 25
# Past any real collection (25 × 10,000,000 rows): a larger page is simply past the end.
MAX_PAGE = 10_000_000


@dataclass(frozen=True)
class PageRequest:
    page: int
    per_page: int

    @property
    def skip(self) -> int:
        return (self.page - 1) * self.per_page


def page_request(args) -> PageRequest:
    """Read `page` and `per_page` from the query; a per_page over 25 is 25, as on Action Network."""
    page = _positive(args.get("page"), "page", default=1)
    per_page = min(_positive(args.get("per_page"), "per_page", default=MAX_PER_PAGE), MAX_PER_PAGE)
    return PageRequest(page, per_page)


def _positive(raw: str | None, name: str, *, default: int) -> int:
    if raw is None or raw == "":
        return default
    value = parse_id(raw.strip())
    if value is None:
        raise OsdiError(400, f"{name} must be a whole number of 1 or more, not {raw[:40]!r}.")
    return value


def offset_page(stmt: Select, wanted: PageRequest, *, scalars: bool = True) -> tuple[list, int]:
    """Return (the page's rows, how many rows there are) for `stmt`, by OFFSET."""
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    if wanted.page > MAX_PAGE or wanted.skip >= total:  # and no OFFSET past a bigint
        return [], total
    paged = stmt.offset(wanted.skip).limit(wanted.per_page)
    rows = db.session.scalars(paged) if scalars else db.session.execute(paged)
    return list(rows), total


# Where row `skip` of all supporters (in id order) is: the first block whose running count
# passes it, and how many supporters come before that block. About a thousand blocks of a few
# slots each at 1,000,000 supporters; blocks that lost everyone (erasures) are skipped.
FIND_BLOCK = text(
    """
    WITH blocks AS (
        SELECT block, sum(people)::bigint AS people FROM osdi_people_blocks GROUP BY block
    ), running AS (
        SELECT block, people, (sum(people) OVER (ORDER BY block))::bigint AS upto
        FROM blocks WHERE people > 0
    )
    SELECT (SELECT coalesce(sum(people), 0)::bigint FROM blocks) AS total, found.block, found.before
    FROM (SELECT 1) AS one
    LEFT JOIN (
        SELECT block, upto - people AS before FROM running WHERE upto > :skip
        ORDER BY block LIMIT 1
    ) AS found ON true
    """
)


def people_page(wanted: PageRequest, conditions=()) -> tuple[list[Supporter], int]:
    """Return (a page of supporters in id order, how many match) for the filter `conditions`."""
    stmt = (
        select(Supporter)
        .options(lazyload(Supporter.lists), lazyload(Supporter.tags))  # unused here
        .order_by(Supporter.id)
    )
    for condition in conditions:
        stmt = stmt.where(condition)
    if conditions or dialect_name(db.session) != "postgresql":
        # Filters narrow the set (an address: one person; a modified date: what changed since
        # the last sync, from ix_supporters_updated_at); SQLite is a local run's few thousand.
        return offset_page(stmt, wanted)
    # Capped: a page number near 2**63 would overflow the bigint it is compared with.
    skip = min(wanted.skip, MAX_PAGE * MAX_PER_PAGE)
    total, block, before = db.session.execute(FIND_BLOCK, {"skip": skip}).one()
    if block is None or wanted.page > MAX_PAGE:
        return [], total
    paged = (
        stmt.where(Supporter.id >= block * BLOCK_SIZE)
        .offset(wanted.skip - before)
        .limit(wanted.per_page)
    )
    return list(db.session.scalars(paged)), total
