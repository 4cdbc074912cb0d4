"""group_welcome_templates: the group welcome templates (入群欢迎语) guidebot keeps in WeCom

Revision ID: 0032
Revises: 0007
Create Date: 2026-12-06 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from guidebot.db.types import UTCDateTime

revision: str = '0032'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_S = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        'group_welcome_templates',
        sa.Column('tenant', _S(length=32), nullable=False),
        sa.Column('name', _S(length=48), nullable=False),
        sa.Column('template_id', _S(length=128), nullable=False),
        sa.Column('digest', _S(length=64), nullable=False),
        sa.Column('synced_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('tenant', 'name'))


def downgrade() -> None:
    op.drop_table('group_welcome_templates')
