"""campaign actions indexed for the reports: by mailing, and by campaign and day

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 17:15:00

Comparisons count the letters each mailing drove (actions joined on mailing_id) and the
campaign report counts actions per day; without these both read the whole actions table.
"""
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_campaign_actions_mailing', 'campaign_actions', ['mailing_id'])
    op.create_index(
        'ix_campaign_actions_campaign_created', 'campaign_actions', ['campaign_id', 'created_at']
    )


def downgrade():
    op.drop_index('ix_campaign_actions_campaign_created', table_name='campaign_actions')
    op.drop_index('ix_campaign_actions_mailing', table_name='campaign_actions')
