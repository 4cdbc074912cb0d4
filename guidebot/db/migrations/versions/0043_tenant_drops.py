"""tenant_drops: one-off 群发 HQ created in the console or the admin API (新建群发), beside the
content library's drops

Revision ID: 0043
Revises: 0007
Create Date: 2026-12-06 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from guidebot.db.types import UTCDateTime

revision: str = '0043'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'tenant_drops',
        sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('drop_id', sqlmodel.sql.sqltypes.AutoString(length=48), nullable=False),
        sa.Column('spec', sa.Text(), nullable=False),
        sa.Column('at', UTCDateTime(), nullable=False),
        sa.Column('operator', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('cancelled_at', UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('tenant', 'drop_id'))


def downgrade() -> None:
    op.drop_table('tenant_drops')
