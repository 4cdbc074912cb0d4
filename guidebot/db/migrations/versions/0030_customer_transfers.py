"""transfer_batches and customer_transfers: customers HQ moves from one guide to another
(在职继承 / 离职继承) and what became of each

Revision ID: 0030
Revises: 0007
Create Date: 2026-12-06 09:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from guidebot.db.types import UTCDateTime

revision: str = '0030'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_S = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        'transfer_batches',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant', _S(length=32), nullable=False),
        sa.Column('kind', _S(length=16), nullable=False),
        sa.Column('handover', _S(length=64), nullable=False),
        sa.Column('takeover', _S(length=64), nullable=False),
        sa.Column('message', _S(length=200), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_transfer_batches_tenant_id', 'transfer_batches', ['tenant', 'id'])
    op.create_table(
        'customer_transfers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('batch_id', sa.Integer(), nullable=False),
        sa.Column('tenant', _S(length=32), nullable=False),
        sa.Column('kind', _S(length=16), nullable=False),
        sa.Column('handover', _S(length=64), nullable=False),
        sa.Column('takeover', _S(length=64), nullable=False),
        sa.Column('external_userid', _S(length=128), nullable=False),
        sa.Column('state', _S(length=16), nullable=False),
        sa.Column('errcode', sa.Integer(), nullable=True),
        sa.Column('takeover_at', UTCDateTime(), nullable=True),
        sa.Column('checked_at', UTCDateTime(), nullable=True),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['batch_id'], ['transfer_batches.id']),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_customer_transfers_batch', 'customer_transfers',
                    ['batch_id', 'external_userid'], unique=True)
    op.create_index('ix_customer_transfers_open', 'customer_transfers',
                    ['tenant', 'state', 'handover', 'takeover'])
    op.create_index('ix_customer_transfers_customer', 'customer_transfers',
                    ['tenant', 'external_userid'])


def downgrade() -> None:
    op.drop_index('ix_customer_transfers_customer', table_name='customer_transfers')
    op.drop_index('ix_customer_transfers_open', table_name='customer_transfers')
    op.drop_index('ix_customer_transfers_batch', table_name='customer_transfers')
    op.drop_table('customer_transfers')
    op.drop_index('ix_transfer_batches_tenant_id', table_name='transfer_batches')
    op.drop_table('transfer_batches')
