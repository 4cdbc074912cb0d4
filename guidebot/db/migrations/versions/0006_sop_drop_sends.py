"""sop: the customers of content drops' 群发 tasks, counted in the per-customer quota

A drop's task lists its customers in the task's detail; this table holds one row per customer
and task, so the SOP planner counts a drop beside the steps (and a drop leaves out customers
whose quota is used).

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-02 04:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import guidebot.db.types

revision: str = '0006'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'sop_drop_sends',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('task_id', sa.Integer(), nullable=False),
        sa.Column('external_userid', sqlmodel.sql.sqltypes.AutoString(length=128),
                  nullable=False),
        sa.Column('at', guidebot.db.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('task_id', 'external_userid'))
    op.create_index('ix_sop_drop_sends_customer', 'sop_drop_sends',
                    ['tenant', 'external_userid', 'at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_sop_drop_sends_customer', table_name='sop_drop_sends')
    op.drop_table('sop_drop_sends')
