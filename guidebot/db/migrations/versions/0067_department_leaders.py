"""department_leaders: the store managers (店长) department/get names per WeCom department,
with the store the department makes

Revision ID: 0067
Revises: 0063
Create Date: 2026-12-07 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from guidebot.db.types import UTCDateTime

revision: str = '0067'
down_revision: str | None = '0063'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    op.create_table(
        'department_leaders',
        sa.Column('tenant', text(length=32), nullable=False),
        sa.Column('department_id', sa.Integer(), nullable=False),
        sa.Column('userid', text(length=64), nullable=False),
        sa.Column('store_id', text(length=64), nullable=False),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('tenant', 'department_id', 'userid'))
    op.create_index('ix_department_leaders_userid', 'department_leaders',
                    ['tenant', 'userid'])


def downgrade() -> None:
    op.drop_index('ix_department_leaders_userid', table_name='department_leaders')
    op.drop_table('department_leaders')
