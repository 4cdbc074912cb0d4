"""contacts: guides' status from WeCom's address book (active, wecom_status, directory_at)

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-03 09:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import guidebot.db.types

revision: str = '0010'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('guides') as batch:
        batch.add_column(sa.Column('active', sa.Boolean(), nullable=False,
                                   server_default=sa.true()))
        batch.add_column(sa.Column('wecom_status', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('directory_at', guidebot.db.types.UTCDateTime(),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('guides') as batch:
        batch.drop_column('directory_at')
        batch.drop_column('wecom_status')
        batch.drop_column('active')
