"""rollups: first-time stamps on deliveries, per-mailing, hourly and per-link counters

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 19:00:00

Mailing figures are read from counters kept current as events are recorded
(app/tracking/rollups.py) instead of counting distinct recipients over tracking_events on
every request. Existing events are not counted by this migration: run `clarion stats rebuild`
once after upgrading, which recomputes every stamp and counter from the events.
"""

import sqlalchemy as sa
from alembic import op

from app.db import JsonDict, UtcDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

STAMPS = (
    "opened_at",
    "human_opened_at",
    "clicked_at",
    "human_clicked_at",
    "acted_at",
    "unsubscribed_at",
)
FIGURES = ("opens", "human_opens", "clicks", "human_clicks", "actions", "unsubscribes")
EVENTS = ("open_events", "human_open_events", "click_events", "human_click_events")


def _counters(names):
    return [sa.Column(name, sa.Integer(), server_default="0", nullable=False) for name in names]


def _mailing_fk():
    return sa.ForeignKey("mailings.id", ondelete="CASCADE")


def upgrade():
    for name in STAMPS:
        op.add_column("deliveries", sa.Column(name, UtcDateTime(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        # A delivery row is updated again when its recipient first opens, clicks, acts. With
        # room left on its page the new version stays there and, as no indexed column
        # changes, no index is touched (a HOT update): the stamps cost the event drain a
        # fraction of what a full row update would. Applies to pages written from now on.
        op.execute("ALTER TABLE deliveries SET (fillfactor = 80)")
    op.add_column("mailings", sa.Column("outcome_counts", JsonDict, nullable=True))
    op.create_index(
        "ix_bounce_events_mailing_kind_delivery",
        "bounce_events",
        ["mailing_id", "kind", "delivery_id"],
    )
    op.create_table(
        "mailing_rollups",
        sa.Column(
            "mailing_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            _mailing_fk(),
            primary_key=True,
        ),
        *_counters(FIGURES + EVENTS),
    )
    op.create_table(
        "mailing_hourly_rollups",
        sa.Column(
            "mailing_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            _mailing_fk(),
            primary_key=True,
        ),
        sa.Column("hour", UtcDateTime(), primary_key=True),
        *_counters(FIGURES + EVENTS),
    )
    op.create_table(
        "link_rollups",
        sa.Column(
            "mailing_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            _mailing_fk(),
            primary_key=True,
        ),
        sa.Column("link_position", sa.Integer(), primary_key=True),
        *_counters(("clicks", "human_clicks", "click_events", "human_click_events")),
    )
    op.create_table(
        "link_first_clicks",
        sa.Column(
            "delivery_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.ForeignKey("deliveries.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("link_position", sa.Integer(), primary_key=True),
        sa.Column(
            "mailing_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            _mailing_fk(),
            nullable=False,
        ),
        sa.Column("clicked_at", UtcDateTime(), nullable=True),
        sa.Column("human_clicked_at", UtcDateTime(), nullable=True),
    )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE deliveries RESET (fillfactor)")
    op.drop_table("link_first_clicks")
    op.drop_table("link_rollups")
    op.drop_table("mailing_hourly_rollups")
    op.drop_table("mailing_rollups")
    op.drop_index("ix_bounce_events_mailing_kind_delivery", table_name="bounce_events")
    op.drop_column("mailings", "outcome_counts")
    for name in reversed(STAMPS):
        op.drop_column("deliveries", name)
