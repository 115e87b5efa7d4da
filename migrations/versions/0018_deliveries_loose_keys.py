"""deliveries follow their mailing and supporter by trigger, not by foreign keys

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 03:00:00

The audience snapshot inserts one delivery per recipient in one statement, and the foreign
keys checked each of those rows. The key to supporters took a FOR KEY SHARE lock on every
recipient's supporter row (WAL-logged, its page dirtied: every send wrote to the whole
supporters table) and doubled the INSERT's time at 1,000,000 recipients (26.0 s against
12.4 s without it); the key to mailings, one lookup of the same mailing row per recipient,
added 7.3 s more. The snapshot reads the supporters it inserts, and the mailing it inserts
for, in the same transaction, so the insert checks guard nothing; what the keys did that
matters is on delete: an erased supporter's deliveries stay (the mailing's counts) but forget
who they were (SET NULL), and a deleted mailing takes its deliveries along (CASCADE; only a
draft, which has none, can be deleted through Clarion).

So the keys go and statement-level triggers keep both (one statement per DELETE, however many
rows go), as 0017 did for the consent history. One thing the supporter key's lock also did: an erasure running while a snapshot that includes the person is still
uncommitted waited for it, then unlinked its rows. An advisory lock keeps that: each snapshot
takes it shared (deliveries_snapshot_lock(), before its INSERT) and the trigger takes it
exclusively before its UPDATE, so an erasure waits for snapshots in flight and sees their rows,
and a snapshot starting during an erasure waits for it and no longer sees the person. On
SQLite, which never enforced the key (foreign_keys is off there), a row trigger now does the
same.
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

FOREIGN_KEY = "fk_deliveries_supporter_id_supporters"
MAILING_KEY = "fk_deliveries_mailing_id_mailings"
# The advisory lock between snapshots and erasures: any key no other code takes.
LOCK_KEY = 7_318_204_411


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(FOREIGN_KEY, "deliveries", type_="foreignkey")
        op.drop_constraint(MAILING_KEY, "deliveries", type_="foreignkey")
        op.execute("""
            CREATE FUNCTION deliveries_of_mailings_deleted() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                DELETE FROM deliveries d USING gone WHERE d.mailing_id = gone.id;
                RETURN NULL;
            END $$
        """)
        op.execute("""
            CREATE FUNCTION deliveries_cleared() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                -- DELETE, not TRUNCATE: a TRUNCATE of both tables may still be running here.
                DELETE FROM deliveries;
                RETURN NULL;
            END $$
        """)
        op.execute(
            "CREATE TRIGGER deliveries_of_mailings_deleted AFTER DELETE ON mailings "
            "REFERENCING OLD TABLE AS gone FOR EACH STATEMENT "
            "EXECUTE FUNCTION deliveries_of_mailings_deleted()"
        )
        op.execute(
            "CREATE TRIGGER deliveries_cleared AFTER TRUNCATE ON mailings "
            "FOR EACH STATEMENT EXECUTE FUNCTION deliveries_cleared()"
        )
        op.execute(f"""
            CREATE FUNCTION deliveries_snapshot_lock() RETURNS void LANGUAGE sql AS $$
                SELECT pg_advisory_xact_lock_shared({LOCK_KEY})
            $$
        """)
        op.execute(f"""
            CREATE FUNCTION deliveries_unlinked() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_advisory_xact_lock({LOCK_KEY});
                UPDATE deliveries d SET supporter_id = NULL
                FROM gone WHERE d.supporter_id = gone.id;
                RETURN NULL;
            END $$
        """)
        op.execute(f"""
            CREATE FUNCTION deliveries_all_unlinked() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_advisory_xact_lock({LOCK_KEY});
                UPDATE deliveries SET supporter_id = NULL WHERE supporter_id IS NOT NULL;
                RETURN NULL;
            END $$
        """)
        op.execute(
            "CREATE TRIGGER deliveries_unlinked AFTER DELETE ON supporters "
            "REFERENCING OLD TABLE AS gone FOR EACH STATEMENT "
            "EXECUTE FUNCTION deliveries_unlinked()"
        )
        op.execute(
            "CREATE TRIGGER deliveries_all_unlinked AFTER TRUNCATE ON supporters "
            "FOR EACH STATEMENT EXECUTE FUNCTION deliveries_all_unlinked()"
        )
        return
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.drop_constraint(FOREIGN_KEY, type_="foreignkey")
        batch_op.drop_constraint(MAILING_KEY, type_="foreignkey")
    op.execute(
        "CREATE TRIGGER deliveries_unlinked AFTER DELETE ON supporters FOR EACH ROW "
        "BEGIN UPDATE deliveries SET supporter_id = NULL WHERE supporter_id = OLD.id; END"
    )
    op.execute(
        "CREATE TRIGGER deliveries_of_mailings_deleted AFTER DELETE ON mailings FOR EACH ROW "
        "BEGIN DELETE FROM deliveries WHERE mailing_id = OLD.id; END"
    )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS deliveries_unlinked ON supporters")
        op.execute("DROP TRIGGER IF EXISTS deliveries_all_unlinked ON supporters")
        op.execute("DROP FUNCTION IF EXISTS deliveries_unlinked()")
        op.execute("DROP FUNCTION IF EXISTS deliveries_all_unlinked()")
        op.execute("DROP FUNCTION IF EXISTS deliveries_snapshot_lock()")
        op.execute("DROP TRIGGER IF EXISTS deliveries_of_mailings_deleted ON mailings")
        op.execute("DROP TRIGGER IF EXISTS deliveries_cleared ON mailings")
        op.execute("DROP FUNCTION IF EXISTS deliveries_of_mailings_deleted()")
        op.execute("DROP FUNCTION IF EXISTS deliveries_cleared()")
        op.execute(
            "DELETE FROM deliveries d WHERE NOT EXISTS "
            "(SELECT FROM mailings m WHERE m.id = d.mailing_id)"
        )
        op.create_foreign_key(
            MAILING_KEY, "deliveries", "mailings", ["mailing_id"], ["id"], ondelete="CASCADE"
        )
        op.execute(
            "UPDATE deliveries d SET supporter_id = NULL WHERE supporter_id IS NOT NULL "
            "AND NOT EXISTS (SELECT FROM supporters s WHERE s.id = d.supporter_id)"
        )
        op.create_foreign_key(
            FOREIGN_KEY,
            "deliveries",
            "supporters",
            ["supporter_id"],
            ["id"],
            ondelete="SET NULL",
        )
        return
    op.execute("DROP TRIGGER IF EXISTS deliveries_unlinked")
    op.execute("DROP TRIGGER IF EXISTS deliveries_of_mailings_deleted")
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.create_foreign_key(
            MAILING_KEY, "mailings", ["mailing_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.create_foreign_key(
            FOREIGN_KEY, "supporters", ["supporter_id"], ["id"], ondelete="SET NULL"
        )
