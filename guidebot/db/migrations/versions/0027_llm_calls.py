"""usage: the LLM calls and the tokens their endpoint reported (llm_calls), so usage
metering counts a tenant's LLM tokens per month

Revision ID: 0027
Revises: 0007
Create Date: 2026-12-06 03:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from guidebot.db.types import UTCDateTime

revision: str = '0027'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_S = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        'llm_calls',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant', _S(length=32), nullable=False),
        sa.Column('at', UTCDateTime(), nullable=False),
        sa.Column('purpose', _S(length=32), nullable=False),
        sa.Column('model', _S(length=128), nullable=False),
        sa.Column('prompt_tokens', sa.Integer(), nullable=False),
        sa.Column('completion_tokens', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_llm_calls_tenant_at', 'llm_calls', ['tenant', 'at'])


def downgrade() -> None:
    op.drop_index('ix_llm_calls_tenant_at', table_name='llm_calls')
    op.drop_table('llm_calls')
