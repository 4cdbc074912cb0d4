"""console: daily statistics per tenant × store × guide × day, per-customer layer facts,
counted-order marks and the upkeep's watermarks (guidebot/stats)

Revision ID: 0014
Revises: 0007
Create Date: 2026-12-03 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import guidebot.db.types

revision: str = '0014'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = '0003'  # the index on commerce_orders

_S = sqlmodel.sql.sqltypes.AutoString
_COUNTS = ('adds_code', 'adds_other', 'deletions', 'new_customers_code', 'new_customers_other',
           'first_purchases', 'repurchases', 'orders', 'gmv_fen', 'orders_new', 'gmv_new_fen',
           'orders_all', 'gmv_all_fen', 'commission_fen')


def upgrade() -> None:
    op.create_table(
        'stats_daily',
        sa.Column('tenant', _S(length=32), nullable=False),
        sa.Column('day', _S(length=10), nullable=False),
        sa.Column('store_id', _S(length=64), nullable=False),
        sa.Column('guide', _S(length=64), nullable=False),
        *[sa.Column(name, sa.Integer(), nullable=False) for name in _COUNTS],
        sa.PrimaryKeyConstraint('tenant', 'day', 'store_id', 'guide'))
    op.create_index('ix_stats_daily_day', 'stats_daily', ['tenant', 'day'])
    op.create_table(
        'stats_customers',
        sa.Column('tenant', _S(length=32), nullable=False),
        sa.Column('external_userid', _S(length=128), nullable=False),
        sa.Column('first_added_at', guidebot.db.types.UTCDateTime(), nullable=True),
        sa.Column('via_code', sa.Boolean(), nullable=False),
        sa.Column('following', sa.Integer(), nullable=False),
        sa.Column('orders', sa.Integer(), nullable=False),
        sa.Column('gmv_fen', sa.Integer(), nullable=False),
        sa.Column('first_order_no', _S(length=64), nullable=True),
        sa.Column('first_paid_at', guidebot.db.types.UTCDateTime(), nullable=True),
        sa.Column('last_paid_at', guidebot.db.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('tenant', 'external_userid'))
    op.create_index('ix_stats_customers_layer', 'stats_customers',
                    ['tenant', 'first_added_at', 'following', 'last_paid_at', 'gmv_fen'])
    op.create_table(
        'stats_order_marks',
        sa.Column('tenant', _S(length=32), nullable=False),
        sa.Column('order_no', _S(length=64), nullable=False),
        sa.Column('day', _S(length=10), nullable=False),
        sa.Column('store_id', _S(length=64), nullable=False),
        sa.Column('guide', _S(length=64), nullable=False),
        sa.PrimaryKeyConstraint('tenant', 'order_no'))
    op.create_table(
        'stats_watermarks',
        sa.Column('tenant', _S(length=32), nullable=False),
        sa.Column('source', _S(length=32), nullable=False),
        sa.Column('last_id', sa.Integer(), nullable=False),
        sa.Column('last_at', guidebot.db.types.UTCDateTime(), nullable=True),
        sa.Column('gaps', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('tenant', 'source'))
    # The upkeep reads new orders by arrival time (orders have no serial id).
    op.create_index('ix_stats_orders_received', 'commerce_orders', ['tenant', 'received_at'])


def downgrade() -> None:
    op.drop_index('ix_stats_orders_received', table_name='commerce_orders')
    op.drop_table('stats_watermarks')
    op.drop_table('stats_order_marks')
    op.drop_index('ix_stats_customers_layer', table_name='stats_customers')
    op.drop_table('stats_customers')
    op.drop_index('ix_stats_daily_day', table_name='stats_daily')
    op.drop_table('stats_daily')
