"""customers: an index by tenant and arrival, so the console's customer list and the admin
API's listing read a page (newest first, then on from a cursor) without sorting every
customer of the tenant

Revision ID: 0028
Revises: 0007
Create Date: 2026-12-06 06:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0028'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_customers_arrival', 'customers',
                    ['tenant', 'created_at', 'external_userid'])


def downgrade() -> None:
    op.drop_index('ix_customers_arrival', table_name='customers')
