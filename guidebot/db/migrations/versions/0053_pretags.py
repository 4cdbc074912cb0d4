"""pretags: 预打标签, tags waiting for the customer with a unionid to add a guide

Revision ID: 0053
Revises: 0057
Create Date: 2026-12-07 02:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from guidebot.db.types import UTCDateTime

revision: str = '0053'
down_revision: str | None = '0057'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    op.create_table(
        'pretags',
        sa.Column('tenant', text(length=32), nullable=False),
        sa.Column('unionid', text(length=128), nullable=False),
        sa.Column('tag_id', text(length=64), nullable=False),
        sa.Column('import_id', text(length=32), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('applied_at', UTCDateTime(), nullable=True),
        sa.Column('guide', text(length=64), nullable=False),
        sa.Column('external_userid', text(length=128), nullable=False),
        sa.PrimaryKeyConstraint('tenant', 'unionid', 'tag_id'))
    op.create_index('ix_pretags_import', 'pretags', ['tenant', 'import_id'])


def downgrade() -> None:
    op.drop_index('ix_pretags_import', table_name='pretags')
    op.drop_table('pretags')
