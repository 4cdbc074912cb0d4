"""group_customer_changes: an index by (tenant, change, at, chat_id), so the 客户群 page, the
groups API and the overview JSON count a range's joins and leaves (per group and in all) from
that span of the tenant's changes, the index alone answering, instead of every change of every
tenant

Revision ID: 0060
Revises: 0058
Create Date: 2026-12-07 05:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0060'
down_revision: str | None = '0058'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_group_customer_changes_at', 'group_customer_changes',
                    ['tenant', 'change', 'at', 'chat_id'])


def downgrade() -> None:
    op.drop_index('ix_group_customer_changes_at', table_name='group_customer_changes')
