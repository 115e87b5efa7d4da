"""staff users of the web app, and the audit log

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 16:00:00

"""
from alembic import op
import sqlalchemy as sa

import app.db


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    op.create_table(
        'staff_users',
        sa.Column('id', BigId, nullable=False),
        sa.Column('email', sa.String(length=320), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('role', sa.Enum('admin', 'campaigner', 'analyst', name='staff_role'), nullable=False),
        sa.Column('password_hash', sa.String(length=255), nullable=False),
        sa.Column('session_token', sa.String(length=64), nullable=False),
        sa.Column('totp_secret', sa.String(length=64), nullable=True),
        sa.Column('totp_last_step', sa.BigInteger(), nullable=True),
        sa.Column('created_at', app.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column('last_login_at', app.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column('disabled_at', app.db.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_users')),
        sa.UniqueConstraint('email', name=op.f('uq_staff_users_email')),
    )
    op.create_table(
        'audit_log',
        sa.Column('id', BigId, nullable=False),
        sa.Column('at', app.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column('actor', sa.String(length=400), nullable=False),
        sa.Column('action', sa.String(length=80), nullable=False),
        sa.Column('subject_type', sa.String(length=40), nullable=True),
        sa.Column('subject_id', sa.BigInteger(), nullable=True),
        sa.Column('detail', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log')),
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_log_action'), ['action'], unique=False)


def downgrade():
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_action'))
        batch_op.drop_index(batch_op.f('ix_audit_log_at'))
    op.drop_table('audit_log')
    op.drop_table('staff_users')
    sa.Enum(name='staff_role').drop(op.get_bind(), checkfirst=True)
