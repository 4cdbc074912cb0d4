"""sop_tasks.stopped_at (HQ stopped a drop's 群发, 停止群发) and an index by source, which the
drop's sends (群发记录) are read by

Revision ID: 0038
Revises: 0007
Create Date: 2026-12-06 15:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from guidebot.db.types import UTCDateTime

revision: str = '0038'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('sop_tasks') as batch:
        batch.add_column(sa.Column('stopped_at', UTCDateTime(), nullable=True))
        batch.create_index('ix_sop_tasks_source', ['tenant', 'source', 'id'])


def downgrade() -> None:
    with op.batch_alter_table('sop_tasks') as batch:
        batch.drop_index('ix_sop_tasks_source')
        batch.drop_column('stopped_at')
