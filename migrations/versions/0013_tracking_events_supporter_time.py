"""tracking events indexed by (supporter, time) for behaviour segments; A/B variant rollups

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 19:40:00

"Opened or clicked as a person since …" (app/tracking/behaviour.py read_mail_since, used by the
sunset list and the recent-engagement segments) looks up each supporter's events after a
cutoff. The single-column supporter index made it fetch every event row to read its kind and
machine flag; this index answers it alone. It replaces ix_tracking_events_supporter_id (its
first column is the same), so the pixel's insert still maintains one index for it.

ab_variant_rollups keep each A/B variant's unique counts as events and bounces arrive, and
ab_tests.variant_outcomes the test portion's deliveries counted once they are settled, so a
report does not count a test portion of 200,000 deliveries on every request. Run `clarion stats
rebuild` once after upgrading if A/B tests were sent before.
"""

import sqlalchemy as sa
from alembic import op

from app.db import BigId, JsonDict

COUNTERS = (
    "opens",
    "human_opens",
    "clicks",
    "human_clicks",
    "actions",
    "unsubscribes",
    "complaints",
    "hard_bounces",
)

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.create_index(
        "ix_tracking_events_supporter_time",
        "tracking_events",
        ["supporter_id", "occurred_at"],
        postgresql_include=["kind", "machine"] if postgresql else [],
    )
    op.drop_index("ix_tracking_events_supporter_id", table_name="tracking_events")
    op.create_table(
        "ab_variant_rollups",
        sa.Column(
            "variant_id",
            BigId,
            sa.ForeignKey("mailing_variants.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "mailing_id", BigId, sa.ForeignKey("mailings.id", ondelete="CASCADE"), nullable=False
        ),
        *(sa.Column(name, sa.Integer(), server_default="0", nullable=False) for name in COUNTERS),
    )
    op.create_index("ix_ab_variant_rollups_mailing", "ab_variant_rollups", ["mailing_id"])
    op.add_column("ab_tests", sa.Column("variant_outcomes", JsonDict, nullable=True))


def downgrade():
    op.drop_column("ab_tests", "variant_outcomes")
    op.drop_index("ix_ab_variant_rollups_mailing", table_name="ab_variant_rollups")
    op.drop_table("ab_variant_rollups")
    op.create_index("ix_tracking_events_supporter_id", "tracking_events", ["supporter_id"])
    op.drop_index("ix_tracking_events_supporter_time", table_name="tracking_events")
