"""OSDI API: supporters counted per block of ids (deep pages by number), modified-date index

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 10:00:00

Action Network clients page people by page number; app/osdi/models.py explains the counters.
On PostgreSQL, statement-level triggers with transition tables keep them: one grouped upsert
per INSERT or DELETE statement however many rows it touches (a 20,000-row import chunk is one),
and TRUNCATE empties them. SQLite (local runs) has no triggers here: the OSDI API pages with
OFFSET there, which is fine at a local run's size.
"""
import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

BLOCK_SIZE = 1024  # app/osdi/models.py BLOCK_SIZE
SLOTS = 8  # app/osdi/models.py SLOTS

# ORDER BY block: concurrent statements lock their counter rows in one order (no deadlock).
COUNT_ROWS = """
    INSERT INTO osdi_people_blocks (block, slot, people)
    SELECT id / {block_size}, pg_backend_pid() % {slots}, {sign} count(*)
    FROM {rows} GROUP BY id / {block_size} ORDER BY id / {block_size}
    ON CONFLICT (block, slot) DO UPDATE SET people = osdi_people_blocks.people + EXCLUDED.people
"""


def _function(name: str, body: str) -> str:
    return f"""
        CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            {body};
            RETURN NULL;
        END $$
    """


def upgrade():
    op.create_table(
        "osdi_people_blocks",
        sa.Column("block", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("slot", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("people", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("block", "slot"),
    )
    op.create_index("ix_supporters_updated_at", "supporters", ["updated_at"])
    if op.get_bind().dialect.name != "postgresql":
        return
    sizes = {"block_size": BLOCK_SIZE, "slots": SLOTS}
    op.execute(
        _function("osdi_people_added", COUNT_ROWS.format(rows="new_rows", sign="", **sizes))
    )
    op.execute(
        _function("osdi_people_removed", COUNT_ROWS.format(rows="old_rows", sign="-", **sizes))
    )
    op.execute(_function("osdi_people_cleared", "DELETE FROM osdi_people_blocks"))
    op.execute(
        "CREATE TRIGGER osdi_people_added AFTER INSERT ON supporters "
        "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION osdi_people_added()"
    )
    op.execute(
        "CREATE TRIGGER osdi_people_removed AFTER DELETE ON supporters "
        "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION osdi_people_removed()"
    )
    op.execute(
        "CREATE TRIGGER osdi_people_cleared AFTER TRUNCATE ON supporters "
        "FOR EACH STATEMENT EXECUTE FUNCTION osdi_people_cleared()"
    )
    # The supporters already there, counted once, in slot 0.
    op.execute(
        f"INSERT INTO osdi_people_blocks (block, slot, people) "
        f"SELECT id / {BLOCK_SIZE}, 0, count(*) FROM supporters GROUP BY id / {BLOCK_SIZE}"
    )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for name in ("osdi_people_added", "osdi_people_removed", "osdi_people_cleared"):
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON supporters")
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    op.drop_index("ix_supporters_updated_at", table_name="supporters")
    op.drop_table("osdi_people_blocks")
