"""outbox: the index by status also holds the tenant, so counting rows by tenant and state
(each /metrics scrape) reads the index alone instead of every row and its payload

Revision ID: 0026
Revises: 0007
Create Date: 2026-12-05 21:50:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0026'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Created before the old one is dropped: the retry pass and claims query by status.
    op.create_index('ix_outbox_status_tenant', 'outbox', ['status', 'tenant'])
    op.drop_index('ix_outbox_status', table_name='outbox')


def downgrade() -> None:
    op.create_index('ix_outbox_status', 'outbox', ['status'])
    op.drop_index('ix_outbox_status_tenant', table_name='outbox')
