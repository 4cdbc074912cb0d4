"""sop_drop_firings: each firing of a content drop to customers with the customers it left out
on quota and the relations it left out as duplicates (群发记录), so that the counts of a guide
whose customers were all left out (no task made) are not lost

Revision ID: 0054
Revises: 0007
Create Date: 2026-12-07 01:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from guidebot.db.types import UTCDateTime

revision: str = '0054'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    op.create_table(
        'sop_drop_firings',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant', text(length=32), nullable=False),
        sa.Column('drop_id', text(length=64), nullable=False),
        sa.Column('firing', text(length=64), nullable=False),
        sa.Column('over_quota', sa.Integer(), nullable=False),
        sa.Column('duplicates', sa.Integer(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('tenant', 'drop_id', 'firing'))


def downgrade() -> None:
    op.drop_table('sop_drop_firings')
