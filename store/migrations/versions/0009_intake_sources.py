"""intake sources: each lead remembers the intake source (named in [intake] sources) that sent it,
so a source reads only its own leads; leads that came in through intake before are the "default"
source's (the api_tokens)

Revision ID: 0009_intake_sources
Revises: 0008_send_budget_leases
"""
import sqlalchemy as sa
from alembic import op


revision = '0009_intake_sources'
down_revision = '0008_send_budget_leases'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=64), nullable=False, server_default=''))
        batch_op.create_index('ix_leads_source', ['source'], unique=False)
    # Intake leads carry an idem:/ref: key or none at all; CRM leads have an external id and
    # WeCom friend leads their own key.
    op.execute("UPDATE leads SET source = 'default' WHERE external_id IS NULL AND "
               "(intake_key IS NULL OR intake_key LIKE 'idem:%' OR intake_key LIKE 'ref:%')")


def downgrade() -> None:
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index('ix_leads_source')
        batch_op.drop_column('source')
