"""A/B tests: a mailing's test settings, its variants, and which variant each recipient got

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 19:10:00

deliveries.variant_id is set for the test portion only; the rest of the audience waits as
'held' deliveries until the winner is picked (app/mailings/abtest/).
"""

import sqlalchemy as sa
from alembic import op

from app.db import BigId, JsonDict, UtcDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _variant_fk(ondelete):
    # SQLite cannot add a constraint to an existing table; the local database goes without.
    if op.get_bind().dialect.name == "postgresql":
        return [sa.ForeignKey("mailing_variants.id", ondelete=ondelete)]
    return []


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        # Outside the migration's transaction: PostgreSQL only uses a new enum value once the
        # transaction that added it has committed.
        with op.get_context().autocommit_block():
            op.execute("ALTER TYPE delivery_status ADD VALUE IF NOT EXISTS 'held'")
    op.create_table(
        "mailing_variants",
        sa.Column("id", BigId, primary_key=True),
        sa.Column(
            "mailing_id",
            BigId,
            sa.ForeignKey("mailings.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(998), nullable=True),
        sa.Column("from_name", sa.String(200), nullable=True),
        sa.Column("preheader", sa.String(300), nullable=True),
        sa.Column("body_mjml", sa.Text(), nullable=True),
        sa.Column("body_text", sa.Text(), nullable=True),
        sa.Column("frozen_subject", sa.Text(), nullable=True),
        sa.Column("frozen_html", sa.Text(), nullable=True),
        sa.Column("frozen_text", sa.Text(), nullable=True),
        sa.Column("stopped_at", UtcDateTime(), nullable=True),
        sa.Column("stopped_reason", sa.Text(), nullable=True),
        sa.UniqueConstraint("mailing_id", "position"),
    )
    op.create_table(
        "ab_tests",
        sa.Column(
            "mailing_id",
            BigId,
            sa.ForeignKey("mailings.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("test_fraction", sa.Float(), nullable=False),
        sa.Column("wait_minutes", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(20), nullable=False),
        sa.Column("selection", sa.String(20), nullable=False),
        sa.Column("min_confidence", sa.Float(), nullable=True),
        sa.Column("max_unsubscribe_rate", sa.Float(), nullable=True),
        sa.Column("max_complaint_rate", sa.Float(), nullable=True),
        sa.Column("breaker_min_sent", sa.Integer(), nullable=False),
        sa.Column("test_recipients", sa.Integer(), nullable=False),
        sa.Column("test_batch_count", sa.Integer(), nullable=False),
        sa.Column("decide_at", UtcDateTime(), nullable=True),
        sa.Column(
            "winner_variant_id",
            BigId,
            sa.ForeignKey("mailing_variants.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("decided_at", UtcDateTime(), nullable=True),
        sa.Column("decided_by", sa.String(200), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("decision", JsonDict, nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
    )
    op.add_column(
        "deliveries", sa.Column("variant_id", BigId, *_variant_fk("SET NULL"), nullable=True)
    )
    op.add_column(
        "mailing_links", sa.Column("variant_id", BigId, *_variant_fk("CASCADE"), nullable=True)
    )
    op.create_index(
        "ix_deliveries_mailing_variant",
        "deliveries",
        ["mailing_id", "variant_id"],
        postgresql_where=sa.text("variant_id IS NOT NULL"),
        sqlite_where=sa.text("variant_id IS NOT NULL"),
    )


def downgrade():
    op.drop_index("ix_deliveries_mailing_variant", table_name="deliveries")
    op.drop_column("mailing_links", "variant_id")
    op.drop_column("deliveries", "variant_id")
    op.drop_table("ab_tests")
    op.drop_table("mailing_variants")
    # PostgreSQL cannot drop an enum value; 'held' stays unused.
