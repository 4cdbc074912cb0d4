"""console: customer layers as counts by add day and last-purchase day (stats_layer_adds,
stats_layer_buyers), kept by the statistics upkeep (`guidebot stats backfill` fills them);
new orders read by (arrival, order_no); SOPs switched off by HQ (sop_switches)

Revision ID: 0018
Revises: 0007
Create Date: 2026-12-03 13:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import guidebot.db.types

revision: str = '0018'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = ('0014', '0002')  # statistics, SOPs, orders

_S = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        'stats_layer_adds',
        sa.Column('tenant', _S(length=32), nullable=False),
        sa.Column('add_day', _S(length=10), nullable=False),
        sa.Column('following', sa.Boolean(), nullable=False),
        sa.Column('tier', _S(length=8), nullable=False),
        sa.Column('customers', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('tenant', 'add_day', 'following', 'tier'))
    op.create_table(
        'stats_layer_buyers',
        sa.Column('tenant', _S(length=32), nullable=False),
        sa.Column('paid_day', _S(length=10), nullable=False),
        sa.Column('add_day', _S(length=10), nullable=False),
        sa.Column('customers', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('tenant', 'paid_day', 'add_day'))
    op.create_table(
        'sop_switches',
        sa.Column('tenant', _S(length=32), nullable=False),
        sa.Column('sop_id', _S(length=48), nullable=False),
        sa.Column('operator', _S(length=64), nullable=False),
        sa.Column('switched_at', guidebot.db.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('tenant', 'sop_id'))
    # The upkeep reads new orders by (arrival, order_no) past its watermark: an index in that
    # order reads a batch without sorting every order after the watermark.
    op.add_column('stats_watermarks', sa.Column('last_key', _S(length=64), nullable=False,
                                                server_default=''))
    op.create_index('ix_stats_orders_arrival', 'commerce_orders',
                    ['tenant', 'received_at', 'order_no'])
    op.drop_index('ix_stats_orders_received', table_name='commerce_orders')
    # The per-customer facts are no longer read by the pages, only by the upkeep (by key).
    op.drop_index('ix_stats_customers_layer', table_name='stats_customers')


def downgrade() -> None:
    op.create_index('ix_stats_customers_layer', 'stats_customers',
                    ['tenant', 'first_added_at', 'following', 'last_paid_at', 'gmv_fen'])
    op.create_index('ix_stats_orders_received', 'commerce_orders', ['tenant', 'received_at'])
    op.drop_index('ix_stats_orders_arrival', table_name='commerce_orders')
    with op.batch_alter_table('stats_watermarks') as batch:
        batch.drop_column('last_key')
    op.drop_table('sop_switches')
    op.drop_table('stats_layer_buyers')
    op.drop_table('stats_layer_adds')
