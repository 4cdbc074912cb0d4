"""api: idempotency records of admin API creations (channels, links): key → body digest, result

Revision ID: 0015
Revises: 0007
Create Date: 2026-12-03 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import guidebot.db.types

revision: str = '0015'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'api_idempotency',
        sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('scope', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('result', sa.Text(), nullable=False),
        sa.Column('created_at', guidebot.db.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('tenant', 'scope', 'key'))


def downgrade() -> None:
    op.drop_table('api_idempotency')
