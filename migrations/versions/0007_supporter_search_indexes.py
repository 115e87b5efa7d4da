"""prefix-search indexes for the staff supporters directory

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 17:00:00

The staff directory (app/supporters/directory.py) searches by the start of an address, a first
or last name, or a postcode. The database's collation is not C, so PostgreSQL can use a btree
for `LIKE 'abc%'` only through a text_pattern_ops index; the names and postcode are indexed in
the exact lower-cased form the directory compares. SQLite (local runs) gets none: its tables
are small and its LIKE ignores these indexes anyway.
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

INDEXES = {
    # Addresses are stored lower-cased (app/supporters/emails.py), so the column itself.
    "ix_supporters_email_prefix": "email text_pattern_ops",
    "ix_supporters_first_name_prefix": "lower(first_name) text_pattern_ops",
    "ix_supporters_last_name_prefix": "lower(last_name) text_pattern_ops",
    # "SW1A 1AA", "sw1a1aa" and "SW1A1AA" are one postcode: compared without spaces.
    "ix_supporters_postcode_prefix": "lower(replace(postcode, ' ', '')) text_pattern_ops",
}


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, expression in INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON supporters ({expression})")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
