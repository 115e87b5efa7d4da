"""letters carry when they are next due, so the clock can re-drive them

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 12:40:00

"""
from alembic import op
import sqlalchemy as sa

import app.db


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('campaign_letters', schema=None) as batch_op:
        batch_op.add_column(sa.Column('next_attempt_at', app.db.UtcDateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_campaign_letters_due', ['status', 'next_attempt_at'], unique=False)


def downgrade():
    with op.batch_alter_table('campaign_letters', schema=None) as batch_op:
        batch_op.drop_index('ix_campaign_letters_due')
        batch_op.drop_column('next_attempt_at')
