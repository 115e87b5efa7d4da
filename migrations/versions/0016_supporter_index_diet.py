"""supporters keep fewer, cheaper indexes: byte-ordered addresses, a status index of the few

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 09:00:00

Every supporter a CSV import creates is written into each of the table's indexes, and at a
million rows those writes were most of the import's time (bench/bench_import.py). Two of them
cost far more than they gave:

- Addresses had two btrees: the unique one in the database's collation (libc's, which
  PostgreSQL compares with strcoll) and a text_pattern_ops copy so the staff directory's
  `LIKE 'abc%'` could use an index (0007). Addresses are stored lower-cased and compared as
  bytes anyway, so the column now has the "C" collation: its unique index compares by memcmp,
  serves equality and prefix searches alike, and the copy is dropped.
- The status index held every supporter, nearly all of them 'subscribed', a value nothing
  looks up through it (`ix_supporters_subscribed_id` serves the subscribed). It now holds only
  the others (unsubscribed, bounced, complained), which is what a search by status needs, and
  a newly subscribed supporter costs it nothing.

SQLite (local runs) keeps its binary collation, which is byte order already.
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

NOT_SUBSCRIBED = "status <> 'subscribed'"


def upgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("DROP INDEX IF EXISTS ix_supporters_email_prefix")
        # Same type, new collation: the table is not rewritten, the unique index is rebuilt.
        op.execute('ALTER TABLE supporters ALTER COLUMN email TYPE varchar(320) COLLATE "C"')
    with op.batch_alter_table("supporters") as batch_op:
        batch_op.drop_index("ix_supporters_status")
        batch_op.create_index(
            "ix_supporters_not_subscribed_status",
            ["status"],
            postgresql_where=sa.text(NOT_SUBSCRIBED),
            sqlite_where=sa.text(NOT_SUBSCRIBED),
        )


def downgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("supporters") as batch_op:
        batch_op.drop_index("ix_supporters_not_subscribed_status")
        batch_op.create_index("ix_supporters_status", ["status"])
    if postgres:
        op.execute("ALTER TABLE supporters ALTER COLUMN email TYPE varchar(320) COLLATE \"default\"")
        op.execute("CREATE INDEX ix_supporters_email_prefix ON supporters (email text_pattern_ops)")
