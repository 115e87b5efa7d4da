"""What the OSDI API keeps for itself: people counted per block of ids, for deep pages.

Parsons (and every Action Network client) pages people by page number. An OFFSET of 1,000,000
reads 1,000,000 index entries first; instead the database counts supporters per block of
BLOCK_SIZE consecutive ids, in triggers on `supporters` (migration 0012), so the block that holds
row N is found by summing about a thousand counters, and only that block's ids are skipped.
The counters change in the transaction that inserts or deletes the supporters, so a page is
exactly what OFFSET would give under the same snapshot: no cache to expire or rebuild.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, SmallInteger
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.supporters.models import Supporter

# Ids per block: a deep page skips at most this many index entries of `supporters`.
BLOCK_SIZE = 1024
# Each connection adds to its own slot (backend pid % SLOTS) of a block, so two imports or
# sign-ups committing at once do not queue on one counter row; a block's count is the sum.
SLOTS = 8


class PeopleBlock(db.Model):
    """How many supporters one connection added (or removed, negative) to ids in one block."""

    __tablename__ = "osdi_people_blocks"

    block: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    slot: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    people: Mapped[int] = mapped_column(BigInteger)


# `filter=modified_date gt '…'` is how syncs ask for what changed since their last run; without
# this index each such page reads every supporter. Declared here, beside its only reader, and
# created by migration 0012.
Index("ix_supporters_updated_at", Supporter.updated_at)
