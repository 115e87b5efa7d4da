"""consent history follows its supporter by trigger, not by a foreign key

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 10:00:00

A CSV import writes one consent record (subscription_changes) for every supporter it creates.
The foreign key to supporters checked each of those rows on insert: a lookup and a row lock on
the supporter just inserted (WAL-logged, page dirtied again), a quarter of a million-row
import's time (bench/bench_import.py, measured with the key and without). Nothing but
Clarion's own services write consent records, and each writes the id of the supporter it has
just read or inserted in the same transaction, so the insert check guards nothing a test does
not; what the key did that matters is the cascade: a supporter erased takes their consent
history along (app/supporters/privacy.py).

So the key goes and triggers keep the cascade, the "loose foreign key" that large PostgreSQL
deployments use for append-only tables: one statement-level trigger per DELETE on supporters
(transition table, one set-based DELETE however many supporters go) and one per TRUNCATE. On
SQLite, which never enforced the key (foreign_keys is off there), a row trigger now does the
same, so an erased supporter's history no longer stays behind on a local run either.
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

FOREIGN_KEY = "fk_subscription_changes_supporter_id_supporters"


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(FOREIGN_KEY, "subscription_changes", type_="foreignkey")
        op.execute("""
            CREATE FUNCTION consent_history_erased() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                DELETE FROM subscription_changes c USING gone WHERE c.supporter_id = gone.id;
                RETURN NULL;
            END $$
        """)
        op.execute("""
            CREATE FUNCTION consent_history_cleared() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                -- DELETE, not TRUNCATE: a TRUNCATE of both tables is still running here.
                DELETE FROM subscription_changes;
                RETURN NULL;
            END $$
        """)
        op.execute(
            "CREATE TRIGGER consent_history_erased AFTER DELETE ON supporters "
            "REFERENCING OLD TABLE AS gone FOR EACH STATEMENT "
            "EXECUTE FUNCTION consent_history_erased()"
        )
        op.execute(
            "CREATE TRIGGER consent_history_cleared AFTER TRUNCATE ON supporters "
            "FOR EACH STATEMENT EXECUTE FUNCTION consent_history_cleared()"
        )
        return
    with op.batch_alter_table("subscription_changes") as batch_op:
        batch_op.drop_constraint(FOREIGN_KEY, type_="foreignkey")
    op.execute(
        "CREATE TRIGGER consent_history_erased AFTER DELETE ON supporters FOR EACH ROW "
        "BEGIN DELETE FROM subscription_changes WHERE supporter_id = OLD.id; END"
    )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS consent_history_erased ON supporters")
        op.execute("DROP TRIGGER IF EXISTS consent_history_cleared ON supporters")
        op.execute("DROP FUNCTION IF EXISTS consent_history_erased()")
        op.execute("DROP FUNCTION IF EXISTS consent_history_cleared()")
        op.execute(
            "DELETE FROM subscription_changes c WHERE NOT EXISTS "
            "(SELECT FROM supporters s WHERE s.id = c.supporter_id)"
        )
        op.create_foreign_key(
            FOREIGN_KEY,
            "subscription_changes",
            "supporters",
            ["supporter_id"],
            ["id"],
            ondelete="CASCADE",
        )
        return
    op.execute("DROP TRIGGER IF EXISTS consent_history_erased")
    with op.batch_alter_table("subscription_changes") as batch_op:
        batch_op.create_foreign_key(
            FOREIGN_KEY, "supporters", ["supporter_id"], ["id"], ondelete="CASCADE"
        )
