"""follow_events: an index by (tenant, at), so the morning digest's counts of yesterday's adds
and deletions and the usage report's adds of a month read that span of the tenant's events
instead of every event of every tenant

Revision ID: 0047
Revises: 0007
Create Date: 2026-12-06 18:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0047'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_follow_events_tenant_at', 'follow_events', ['tenant', 'at'])


def downgrade() -> None:
    op.drop_index('ix_follow_events_tenant_at', table_name='follow_events')
