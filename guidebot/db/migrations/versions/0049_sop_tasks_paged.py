"""sop_tasks: indexes by (tenant, id) and (tenant, guide, id), so the admin API's task
listing reads a page newest first after a cursor along an index instead of sorting every task
of the tenant (or of the guide)

Revision ID: 0049
Revises: 0007
Create Date: 2026-12-06 19:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0049'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_sop_tasks_tenant', 'sop_tasks', ['tenant', 'id'])
    op.drop_index('ix_sop_tasks_guide', table_name='sop_tasks')
    op.create_index('ix_sop_tasks_guide', 'sop_tasks', ['tenant', 'guide', 'id'])


def downgrade() -> None:
    op.drop_index('ix_sop_tasks_guide', table_name='sop_tasks')
    op.create_index('ix_sop_tasks_guide', 'sop_tasks', ['tenant', 'guide'])
    op.drop_index('ix_sop_tasks_tenant', table_name='sop_tasks')
