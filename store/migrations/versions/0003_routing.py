"""routing: decision outcome, team, previous owner, inputs; index for daily caps

Revision ID: 0003_routing
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0003_routing'
down_revision = '0001'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('routing_decisions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('outcome', sa.String(length=16), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('team_id', BigId, nullable=True))
        batch_op.add_column(sa.Column('previous_owner_id', BigId, nullable=True))
        batch_op.add_column(sa.Column('data', sa.JSON(), nullable=False, server_default=sa.text("'{}'")))
        batch_op.create_index('ix_routing_decisions_chosen_at', ['chosen_rep_id', 'at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('routing_decisions', schema=None) as batch_op:
        batch_op.drop_index('ix_routing_decisions_chosen_at')
        batch_op.drop_column('data')
        batch_op.drop_column('previous_owner_id')
        batch_op.drop_column('team_id')
        batch_op.drop_column('outcome')
