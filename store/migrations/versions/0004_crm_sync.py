"""crm sync: the CRM's own id on leads (PUT /api/v1/leads/{external_id}); updated_at index for push --since

Revision ID: 0004_crm_sync
Revises: 0003_routing
"""
from alembic import op
import sqlalchemy as sa


revision = '0004_crm_sync'
down_revision = '0003_routing'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('external_id', sa.String(length=128), nullable=True))
        batch_op.create_unique_constraint('uq_leads_external_id', ['external_id'])
        batch_op.create_index('ix_leads_updated_at', ['updated_at'], unique=False)
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.create_index('ix_customers_updated_at', ['updated_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_index('ix_customers_updated_at')
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index('ix_leads_updated_at')
        batch_op.drop_constraint('uq_leads_external_id', type_='unique')
        batch_op.drop_column('external_id')
