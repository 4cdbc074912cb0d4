"""commerce: tracked links, touches, identities, rule versions, orders, refunds, ledger

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-22 05:55:49.968313
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import guidebot.db.types

revision: str = '0003'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('commerce_identities',
    sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('value', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('external_userid', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('created_at', guidebot.db.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'kind', 'value')
    )
    op.create_table('commerce_ledger',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=96), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('guide', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('order_no', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('refund_no', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('amount_fen', sa.Integer(), nullable=False),
    sa.Column('period', sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
    sa.Column('operator', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', guidebot.db.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant', 'key')
    )
    with op.batch_alter_table('commerce_ledger', schema=None) as batch_op:
        batch_op.create_index('ix_commerce_ledger_period', ['tenant', 'period'], unique=False)

    op.create_table('commerce_links',
    sa.Column('token', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('guide', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('sku', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('page', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('campaign', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('customer', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('created_at', guidebot.db.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('token')
    )
    with op.batch_alter_table('commerce_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_commerce_links_tenant'), ['tenant'], unique=False)

    op.create_table('commerce_orders',
    sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('order_no', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('external_userid', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('unionid', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('openid', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('store_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('tracking', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('paid_at', guidebot.db.types.UTCDateTime(), nullable=False),
    sa.Column('amount_fen', sa.Integer(), nullable=False),
    sa.Column('rule', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('guide', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('credited_store', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('commission_fen', sa.Integer(), nullable=False),
    sa.Column('rule_version_id', sa.Integer(), nullable=False),
    sa.Column('evidence', sa.Text(), nullable=False),
    sa.Column('lines', sa.Text(), nullable=False),
    sa.Column('received_at', guidebot.db.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'order_no')
    )
    with op.batch_alter_table('commerce_orders', schema=None) as batch_op:
        batch_op.create_index('ix_commerce_orders_customer', ['tenant', 'external_userid'], unique=False)
        batch_op.create_index('ix_commerce_orders_paid', ['tenant', 'paid_at'], unique=False)

    op.create_table('commerce_refunds',
    sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('refund_no', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('order_no', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('refunded_at', guidebot.db.types.UTCDateTime(), nullable=False),
    sa.Column('items', sa.Text(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('amount_fen', sa.Integer(), nullable=False),
    sa.Column('clawback_fen', sa.Integer(), nullable=False),
    sa.Column('allocation', sa.Text(), nullable=False),
    sa.Column('received_at', guidebot.db.types.UTCDateTime(), nullable=False),
    sa.Column('applied_at', guidebot.db.types.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('tenant', 'refund_no')
    )
    with op.batch_alter_table('commerce_refunds', schema=None) as batch_op:
        batch_op.create_index('ix_commerce_refunds_order', ['tenant', 'order_no'], unique=False)

    op.create_table('commerce_rule_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('config_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('rules', sa.Text(), nullable=False),
    sa.Column('effective_at', guidebot.db.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('commerce_rule_versions', schema=None) as batch_op:
        batch_op.create_index('ix_commerce_rule_versions_at', ['tenant', 'effective_at'], unique=False)

    op.create_table('commerce_settlements',
    sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('period', sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
    sa.Column('net_fen', sa.Integer(), nullable=False),
    sa.Column('operator', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('settled_at', guidebot.db.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'period')
    )
    op.create_table('commerce_touches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('external_userid', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('unionid', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('openid', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('guide', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('token', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('sku', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('category', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('dur_s', sa.Integer(), nullable=False),
    sa.Column('at', guidebot.db.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('commerce_touches', schema=None) as batch_op:
        batch_op.create_index('ix_commerce_touches_customer', ['tenant', 'external_userid', 'at'], unique=False)
        batch_op.create_index('ix_commerce_touches_openid', ['tenant', 'openid'], unique=False)
        batch_op.create_index('ix_commerce_touches_unionid', ['tenant', 'unionid'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('commerce_touches', schema=None) as batch_op:
        batch_op.drop_index('ix_commerce_touches_unionid')
        batch_op.drop_index('ix_commerce_touches_openid')
        batch_op.drop_index('ix_commerce_touches_customer')

    op.drop_table('commerce_touches')
    op.drop_table('commerce_settlements')
    with op.batch_alter_table('commerce_rule_versions', schema=None) as batch_op:
        batch_op.drop_index('ix_commerce_rule_versions_at')

    op.drop_table('commerce_rule_versions')
    with op.batch_alter_table('commerce_refunds', schema=None) as batch_op:
        batch_op.drop_index('ix_commerce_refunds_order')

    op.drop_table('commerce_refunds')
    with op.batch_alter_table('commerce_orders', schema=None) as batch_op:
        batch_op.drop_index('ix_commerce_orders_paid')
        batch_op.drop_index('ix_commerce_orders_customer')

    op.drop_table('commerce_orders')
    with op.batch_alter_table('commerce_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_commerce_links_tenant'))

    op.drop_table('commerce_links')
    with op.batch_alter_table('commerce_ledger', schema=None) as batch_op:
        batch_op.drop_index('ix_commerce_ledger_period')

    op.drop_table('commerce_ledger')
    op.drop_table('commerce_identities')
