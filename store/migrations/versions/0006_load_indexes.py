"""load indexes: routing counts each candidate's open leads and today's assignments on every
decision; covering indexes keep that an index-only count as the tables grow

Revision ID: 0006_load_indexes
Revises: 0005_inbox_lease
"""
from alembic import op


revision = '0006_load_indexes'
down_revision = '0005_inbox_lease'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.create_index('ix_leads_owner_status', ['owner_id', 'status'], unique=False)
    with op.batch_alter_table('routing_decisions', schema=None) as batch_op:
        batch_op.drop_index('ix_routing_decisions_chosen_at')
        batch_op.create_index('ix_routing_decisions_load', ['chosen_rep_id', 'at', 'outcome'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('routing_decisions', schema=None) as batch_op:
        batch_op.drop_index('ix_routing_decisions_load')
        batch_op.create_index('ix_routing_decisions_chosen_at', ['chosen_rep_id', 'at'], unique=False)
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index('ix_leads_owner_status')
