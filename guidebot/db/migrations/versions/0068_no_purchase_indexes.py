"""no_purchase SOPs (复购提醒 / 新客未转化), read once a day per SOP: follows by (tenant,
added_at), so since = "added" finds the relations begun on one day of the tenant from that
day's span instead of every relation of the tenant; commerce_orders by (tenant,
external_userid, paid_at), so whether a customer bought after a day is a range of that
customer's orders (with (tenant, external_userid) alone SQLite ranged over every order of the
tenant paid since that day instead); the new index replaces (tenant, external_userid), its
prefix, so the orders table keeps as many indexes to write

Revision ID: 0068
Revises: 0003
Create Date: 2026-12-07 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0068'
down_revision: str | None = '0003'  # commerce_orders (0003), after follows (0001)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_follows_added', 'follows', ['tenant', 'added_at'])
    op.create_index('ix_commerce_orders_customer_paid', 'commerce_orders',
                    ['tenant', 'external_userid', 'paid_at'])
    op.drop_index('ix_commerce_orders_customer', table_name='commerce_orders')


def downgrade() -> None:
    op.create_index('ix_commerce_orders_customer', 'commerce_orders',
                    ['tenant', 'external_userid'])
    op.drop_index('ix_commerce_orders_customer_paid', table_name='commerce_orders')
    op.drop_index('ix_follows_added', table_name='follows')
