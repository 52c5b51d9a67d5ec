"""card copy codes: a WeCom response_code's age and whether it was spent (one update per code,
72 h), what the copy shows now, and the view's own facts (whose lead an escalation was about)

Revision ID: 0010_card_copy_codes
Revises: 0009_intake_sources
"""
from alembic import op
import sqlalchemy as sa


revision = '0010_card_copy_codes'
down_revision = '0009_intake_sources'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.add_column(sa.Column('code_issued_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('code_spent_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('shown', sa.String(length=64), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('meta', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.drop_column('meta')
        batch_op.drop_column('shown')
        batch_op.drop_column('code_spent_at')
        batch_op.drop_column('code_issued_at')
