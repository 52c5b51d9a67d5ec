"""outbox recent sends: each delivery tick re-reads its recipients' send windows from the outbox,
so several processes together stay under one rep's platform limit

Revision ID: 0007_outbox_recent_sends
Revises: 0006_load_indexes
"""
from alembic import op


revision = '0007_outbox_recent_sends'
down_revision = '0006_load_indexes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_recipient_sent', ['recipient', 'sent_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_recipient_sent')
