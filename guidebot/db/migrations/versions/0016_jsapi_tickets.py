"""sidebar: JS-SDK jsapi tickets per corp, app and kind, shared by every process

Revision ID: 0016
Revises: 0007
Create Date: 2026-12-03 09:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import guidebot.db.types

revision: str = '0016'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'jsapi_tickets',
        sa.Column('corp_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('agent_id', sa.Integer(), nullable=False),
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('ticket', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
        sa.Column('expires_at', guidebot.db.types.UTCDateTime(), nullable=False),
        sa.Column('fetched_at', guidebot.db.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('corp_id', 'agent_id', 'kind'))


def downgrade() -> None:
    op.drop_table('jsapi_tickets')
