"""commerce: accepted order events (durable before the ack; attributed in batches after it)

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-03 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import guidebot.db.types

revision: str = '0009'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'commerce_order_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('result', sa.Text(), nullable=False),
        sa.Column('received_at', guidebot.db.types.UTCDateTime(), nullable=False),
        sa.Column('done_at', guidebot.db.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('tenant', 'kind', 'key'))
    op.create_index('ix_commerce_order_events_pending', 'commerce_order_events',
                    ['status', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_commerce_order_events_pending', table_name='commerce_order_events')
    op.drop_table('commerce_order_events')
