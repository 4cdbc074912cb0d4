"""console statistics: the upkeep counts orders set by set in SQL (stats_batch_orders holds
one transaction's batch)

Revision ID: 0021
Revises: 0007
Create Date: 2026-12-03 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import guidebot.db.types

revision: str = '0021'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = ('0018',)  # the statistics tables

_S = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        'stats_batch_orders',
        sa.Column('tenant', _S(length=32), nullable=False),
        sa.Column('external_userid', _S(length=128), nullable=False),
        sa.Column('paid_at', guidebot.db.types.UTCDateTime(), nullable=False),
        sa.Column('order_no', _S(length=64), nullable=False),
        sa.Column('received_at', guidebot.db.types.UTCDateTime(), nullable=False),
        sa.Column('amount_fen', sa.Integer(), nullable=False),
        sa.Column('day', _S(length=10), nullable=False),
        sa.Column('store_id', _S(length=64), nullable=False),
        sa.Column('guide', _S(length=64), nullable=False),
        sa.Column('guide_rule', sa.Integer(), nullable=False),
        sa.Column('is_first', sa.Integer(), nullable=False),
        sa.Column('via_code', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('tenant', 'external_userid', 'paid_at', 'order_no'),
        sqlite_with_rowid=False)


def downgrade() -> None:
    op.drop_table('stats_batch_orders')
