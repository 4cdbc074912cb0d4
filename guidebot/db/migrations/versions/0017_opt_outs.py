"""opt_outs: customers who asked for no more messages (微信客服 退订/TD)

Revision ID: 0017
Revises: 0007
Create Date: 2026-12-03 13:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import guidebot.db.types

revision: str = '0017'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _s(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        'opt_outs',
        sa.Column('tenant', _s(32), nullable=False),
        sa.Column('external_userid', _s(128), nullable=False),
        sa.Column('msgid', _s(128), nullable=False),
        sa.Column('opted_out_at', guidebot.db.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('tenant', 'external_userid'))


def downgrade() -> None:
    op.drop_table('opt_outs')
