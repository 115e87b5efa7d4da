"""held actions record a confirmation mail that cannot go out, so the clock re-drives only lost jobs

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 10:00:00

The clock (app/campaigns/confirmations.py redrive_unsent_confirmations) enqueues the
confirmation mail of every held action still owed one whose job Redis lost. A mail the server
refused for good, or whose job RQ gave up on, is recorded in mail_failed_at and mail_error and
no longer re-driven. The partial index holds only the rows still owed their mail, the few the
clock reads every few seconds.
"""

import sqlalchemy as sa
from alembic import op

import app.db

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

MAIL_OWED = sa.text("mail_sent_at IS NULL AND mail_failed_at IS NULL AND confirmed_at IS NULL")


def upgrade():
    with op.batch_alter_table("campaign_pending_actions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("mail_failed_at", app.db.UtcDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("mail_error", sa.Text(), nullable=True))
        batch_op.create_index(
            "ix_campaign_pending_actions_mail_owed",
            ["created_at"],
            unique=False,
            postgresql_where=MAIL_OWED,
            sqlite_where=MAIL_OWED,
        )


def downgrade():
    with op.batch_alter_table("campaign_pending_actions", schema=None) as batch_op:
        batch_op.drop_index("ix_campaign_pending_actions_mail_owed")
        batch_op.drop_column("mail_error")
        batch_op.drop_column("mail_failed_at")
