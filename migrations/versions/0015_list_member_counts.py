"""list member counts kept by triggers, so the Lists page does not count every membership

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 12:00:00

The staff Lists page, GET /api/v1/lists and the OSDI lists show each list's members and
subscribed members. Counted by a GROUP BY over every membership joined to supporters, that is
about a second at 1,000,000 memberships. On PostgreSQL, statement-level triggers with
transition tables keep per-list counters instead (app/supporters/models.py ListMemberCount):
one grouped upsert per statement however many rows it touches, in the transaction that makes
the change, each connection in its own slot so concurrent writers do not queue on one row.

What changes a count, and the trigger that follows it:
- a membership added, removed or moved (list_memberships INSERT / DELETE / UPDATE); a list's
  deletion cascades to its memberships and its counters, and the DELETE trigger skips lists
  that are gone (a counter row for them would break the foreign key);
- a supporter's status crossing "may be mailed" (supporters UPDATE);
- a supporter erased: the cascade that removes their memberships runs after the row is gone,
  when their status can no longer be read, so a row-level BEFORE DELETE trigger takes a
  subscribed supporter off the subscribed counts first (the cascade then takes them off
  `members`, finding no supporter to count as subscribed);
- TRUNCATE of list_memberships empties the counters.

Concurrency (READ COMMITTED): a membership change and a status change of the same supporter in
two transactions would each miss the other's uncommitted row and count the supporter twice or
not at all; their row locks do not conflict (inserting a membership takes FOR KEY SHARE on the
supporter, updating a status FOR NO KEY UPDATE). So the membership triggers lock the
supporters FOR SHARE before reading their status: one of the two transactions waits for the
other to commit and then, each plpgsql statement taking a new snapshot, counts with what it
committed. Imports pay one more tuple lock per membership; status changes wait only for
transactions changing that supporter's memberships.

"Subscribed" is app/supporters/models.py may_be_mailed() (status = 'subscribed') written in SQL
as of this revision; tests/supporters/test_list_counts.py checks the counters against the
GROUP BY over may_be_mailed() for every status, so changing the rule fails there until a new
revision re-creates these functions.

SQLite (local runs, small data) has no triggers here; member_counts() counts there.
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

SLOTS = 8  # app/supporters/models.py LIST_COUNT_SLOTS


def may_be_mailed(alias: str) -> str:
    return f"{alias}.status = 'subscribed'"


# ORDER BY list_id: concurrent statements lock their counter rows in one order (no deadlock).
UPSERT = f"""
    INSERT INTO list_member_counts (list_id, slot, members, subscribed)
    SELECT list_id, pg_backend_pid() % {SLOTS}, members, subscribed FROM (
        {{deltas}}
    ) AS deltas ORDER BY list_id
    ON CONFLICT (list_id, slot) DO UPDATE SET
        members = list_member_counts.members + EXCLUDED.members,
        subscribed = list_member_counts.subscribed + EXCLUDED.subscribed
"""


# Every query below is planned once per connection, when plpgsql first runs it, with the
# transition tables' sizes of that first call (often one row), and the plan is kept. So none
# of them may join two row sets in a way that is quadratic should the plan be a nested loop:
# each joins a transition table only to an index (supporters, list_memberships) or compares
# old and new rows by aggregating them, never by joining one to the other.


def count_memberships(rows: str) -> str:
    """Lock the supporters of `rows` (list_id, supporter_id, d = 1 or -1), then count them.

    Only memberships of lists that still exist count: a list's deletion takes its counters
    with it, and its cascade need lock no one.
    """
    deltas = f"""
        SELECT r.list_id, sum(r.d) AS members,
               coalesce(sum(r.d) FILTER (WHERE {may_be_mailed("s")}), 0) AS subscribed
        FROM {rows} r LEFT JOIN supporters s ON s.id = r.supporter_id
        WHERE r.list_id = ANY(live)
        GROUP BY r.list_id
    """
    return f"""
        SELECT array_agg(id) INTO live FROM lists
        WHERE id IN (SELECT DISTINCT list_id FROM {rows} r);
        PERFORM 1 FROM supporters
        WHERE id IN (SELECT supporter_id FROM {rows} r WHERE r.list_id = ANY(live))
        ORDER BY id FOR SHARE;
        {UPSERT.format(deltas=deltas)}
    """


ADDED = "(SELECT list_id, supporter_id, 1 AS d FROM new_rows)"
REMOVED = "(SELECT list_id, supporter_id, -1 AS d FROM old_rows)"
# What an UPDATE of list_memberships really moved: rows in one transition table only.
MOVED = """(
    SELECT list_id, supporter_id, sum(d) AS d FROM (
        SELECT list_id, supporter_id, -1 AS d FROM old_rows
        UNION ALL SELECT list_id, supporter_id, 1 FROM new_rows
    ) AS both_sides GROUP BY list_id, supporter_id HAVING sum(d) <> 0
)"""

# Supporters whose status crossed may_be_mailed(), +1 or -1, then their memberships.
RESTATUSED = UPSERT.format(
    deltas=f"""
        SELECT m.list_id, 0 AS members, sum(c.d) AS subscribed
        FROM (
            SELECT id, sum(d) AS d FROM (
                SELECT id, -1 AS d FROM old_rows o WHERE {may_be_mailed("o")}
                UNION ALL SELECT id, 1 FROM new_rows n WHERE {may_be_mailed("n")}
            ) AS both_sides GROUP BY id HAVING sum(d) <> 0
        ) AS c
        JOIN list_memberships m ON m.supporter_id = c.id
        GROUP BY m.list_id
    """
)

ERASED = UPSERT.format(
    deltas="SELECT list_id, 0 AS members, -1 AS subscribed FROM list_memberships "
    "WHERE supporter_id = OLD.id"
)

# name: (body, what it returns)
FUNCTIONS = {
    "list_member_counts_added": (count_memberships(ADDED), "NULL"),
    "list_member_counts_removed": (count_memberships(REMOVED), "NULL"),
    "list_member_counts_moved": (count_memberships(MOVED), "NULL"),
    "list_member_counts_cleared": ("DELETE FROM list_member_counts", "NULL"),
    "list_member_counts_restatused": (RESTATUSED, "NULL"),
    "list_member_counts_erased": (ERASED, "OLD"),
}

TRIGGERS = {
    "list_member_counts_added": (
        "list_memberships",
        "AFTER INSERT ON list_memberships REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT",
    ),
    "list_member_counts_removed": (
        "list_memberships",
        "AFTER DELETE ON list_memberships REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT",
    ),
    "list_member_counts_moved": (
        "list_memberships",
        "AFTER UPDATE ON list_memberships REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH STATEMENT",
    ),
    "list_member_counts_cleared": (
        "list_memberships",
        "AFTER TRUNCATE ON list_memberships FOR EACH STATEMENT",
    ),
    # PostgreSQL allows no column list (UPDATE OF status) with transition tables; an update
    # that leaves every status alone costs a join of its own old and new rows.
    "list_member_counts_restatused": (
        "supporters",
        "AFTER UPDATE ON supporters REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH STATEMENT",
    ),
    # Row level, and only for subscribed supporters: erasure deletes one at a time.
    "list_member_counts_erased": (
        "supporters",
        f"BEFORE DELETE ON supporters FOR EACH ROW WHEN ({may_be_mailed('OLD')})",
    ),
}


def upgrade():
    op.create_table(
        "list_member_counts",
        sa.Column("list_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("slot", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("members", sa.BigInteger(), nullable=False),
        sa.Column("subscribed", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["list_id"],
            ["lists.id"],
            name=op.f("fk_list_member_counts_list_id_lists"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("list_id", "slot", name=op.f("pk_list_member_counts")),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, (body, returns) in FUNCTIONS.items():
        op.execute(
            f"""
            CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
            DECLARE
                live bigint[];  -- the lists of a statement's memberships that still exist
            BEGIN
                {body};
                RETURN {returns};
            END $$
            """
        )
    for name, (_, when) in TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {when} EXECUTE FUNCTION {name}()")
    # The memberships already there, counted once, in slot 0. CREATE TRIGGER above locked
    # list_memberships and supporters against writes until this migration commits, so nothing
    # changes between this count and the triggers taking over.
    op.execute(
        f"""
        INSERT INTO list_member_counts (list_id, slot, members, subscribed)
        SELECT m.list_id, 0, count(*), count(*) FILTER (WHERE {may_be_mailed("s")})
        FROM list_memberships m JOIN supporters s ON s.id = m.supporter_id
        GROUP BY m.list_id
        """
    )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for name, (table, _) in TRIGGERS.items():
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    op.drop_table("list_member_counts")
