"""send budget and timer leases: per-recipient/per-robot platform limits reserved in the database
(one budget whichever process sends), and a holder and renewable lease
on firing timers

Revision ID: 0008_send_budget_leases
Revises: 0007_outbox_recent_sends
"""
from alembic import op
import sqlalchemy as sa


revision = '0008_send_budget_leases'
down_revision = '0007_outbox_recent_sends'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'send_scopes',
        sa.Column('scope', sa.String(length=300), nullable=False),
        sa.PrimaryKeyConstraint('scope', name=op.f('pk_send_scopes')),
    )
    op.create_table(
        'send_reservations',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('scope', sa.String(length=300), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('state', sa.String(length=8), nullable=False),
        sa.Column('holder', sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_send_reservations')),
    )
    op.create_index('ix_send_reservations_scope_at', 'send_reservations', ['scope', 'at'], unique=False)
    with op.batch_alter_table('timers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_owner', sa.String(length=128), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('timers', schema=None) as batch_op:
        batch_op.drop_column('lease_until')
        batch_op.drop_column('lease_owner')
    op.drop_index('ix_send_reservations_scope_at', table_name='send_reservations')
    op.drop_table('send_reservations')
    op.drop_table('send_scopes')
