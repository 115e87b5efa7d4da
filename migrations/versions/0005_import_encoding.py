"""supporter imports record the text encoding they were read in

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 13:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('supporter_imports', schema=None) as batch_op:
        batch_op.add_column(sa.Column('encoding', sa.String(length=40), nullable=True))


def downgrade():
    with op.batch_alter_table('supporter_imports', schema=None) as batch_op:
        batch_op.drop_column('encoding')
