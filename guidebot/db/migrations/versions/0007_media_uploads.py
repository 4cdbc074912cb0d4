"""content: media ids of uploaded content_library pictures (3-day life, reused while young)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import guidebot.db.types

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'media_uploads',
        sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('media_id', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
        sa.Column('uploaded_at', guidebot.db.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('tenant', 'digest'))


def downgrade() -> None:
    op.drop_table('media_uploads')
