"""inbox lease: who is processing a row and until when, so a process starting next to live ones
only takes back rows whose owner died or whose lease ran out

Revision ID: 0005_inbox_lease
Revises: 0004_crm_sync
"""
from alembic import op
import sqlalchemy as sa


revision = '0005_inbox_lease'
down_revision = '0004_crm_sync'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('inbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_owner', sa.String(length=128), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('inbox', schema=None) as batch_op:
        batch_op.drop_column('lease_until')
        batch_op.drop_column('lease_owner')
