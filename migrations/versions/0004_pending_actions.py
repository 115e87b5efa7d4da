"""actions typed on public forms wait in campaign_pending_actions until their address confirms

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 12:50:00

"""
from alembic import op
import sqlalchemy as sa

import app.db


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('campaign_pending_actions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('campaign_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('mailing_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('town', sa.String(length=200), nullable=False),
    sa.Column('letter_body', sa.Text(), nullable=True),
    sa.Column('channel', sa.String(length=40), nullable=False),
    sa.Column('consent_channel', sa.String(length=40), nullable=False),
    sa.Column('consent_detail', sa.String(length=300), nullable=False),
    sa.Column('client_hash', sa.String(length=64), nullable=True),
    sa.Column('flagged_reason', sa.String(length=200), nullable=True),
    sa.Column('created_at', app.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('mail_sent_at', app.db.UtcDateTime(timezone=True), nullable=True),
    sa.Column('mail_message_id', sa.String(length=300), nullable=True),
    sa.Column('confirmed_at', app.db.UtcDateTime(timezone=True), nullable=True),
    sa.Column('action_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['action_id'], ['campaign_actions.id'], name=op.f('fk_campaign_pending_actions_action_id_campaign_actions'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_pending_actions_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['mailing_id'], ['mailings.id'], name=op.f('fk_campaign_pending_actions_mailing_id_mailings'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_pending_actions'))
    )
    with op.batch_alter_table('campaign_pending_actions', schema=None) as batch_op:
        batch_op.create_index('ix_campaign_pending_actions_campaign_created', ['campaign_id', 'created_at'], unique=False)
        batch_op.create_index('ix_campaign_pending_actions_client_created', ['client_hash', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_campaign_pending_actions_email'), ['email'], unique=False)


def downgrade():
    with op.batch_alter_table('campaign_pending_actions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campaign_pending_actions_email'))
        batch_op.drop_index('ix_campaign_pending_actions_client_created')
        batch_op.drop_index('ix_campaign_pending_actions_campaign_created')

    op.drop_table('campaign_pending_actions')
