"""group_customer_changes, stats_group_daily, stats_group_customers: customer group members in
the daily statistics (joins, leaves and handovers per owner and day); the changes so far are
written from group_members (a join at each customer's join time, a leave at their leave time,
under the group's owner now), and the statistics job counts them at its next pass

Revision ID: 0058
Revises: 0014, 0031
Create Date: 2026-12-07 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from guidebot.db.types import UTCDateTime

revision: str = '0058'
down_revision: str | Sequence[str] | None = ('0014', '0031')
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_S = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        'group_customer_changes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant', _S(length=32), nullable=False),
        sa.Column('chat_id', _S(length=64), nullable=False),
        sa.Column('owner', _S(length=64), nullable=False),
        sa.Column('external_userid', _S(length=128), nullable=False),
        sa.Column('change', _S(length=8), nullable=False),
        sa.Column('at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'))
    op.create_table(
        'stats_group_daily',
        sa.Column('tenant', _S(length=32), nullable=False),
        sa.Column('day', _S(length=10), nullable=False),
        sa.Column('store_id', _S(length=64), nullable=False),
        sa.Column('guide', _S(length=64), nullable=False),
        sa.Column('group_joins', sa.Integer(), nullable=False),
        sa.Column('group_leaves', sa.Integer(), nullable=False),
        sa.Column('group_handed_in', sa.Integer(), nullable=False),
        sa.Column('group_handed_out', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('tenant', 'day', 'store_id', 'guide'))
    op.create_index('ix_stats_group_daily_day', 'stats_group_daily', ['tenant', 'day'])
    op.create_table(
        'stats_group_customers',
        sa.Column('tenant', _S(length=32), nullable=False),
        sa.Column('owner', _S(length=64), nullable=False),
        sa.Column('external_userid', _S(length=128), nullable=False),
        sa.Column('groups', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('tenant', 'owner', 'external_userid'))
    op.execute("""
        INSERT INTO group_customer_changes (tenant, chat_id, owner, external_userid, change, at)
        SELECT tenant, chat_id, owner, member_id, change, at FROM (
          SELECT m.tenant, m.chat_id, g.owner, m.member_id, 'join' AS change,
                 coalesce(m.joined_at, g.created_at, g.synced_at) AS at
          FROM group_members m JOIN group_chats g
            ON g.tenant = m.tenant AND g.chat_id = m.chat_id WHERE m.kind = 2
          UNION ALL
          SELECT m.tenant, m.chat_id, g.owner, m.member_id, 'leave' AS change, m.left_at AS at
          FROM group_members m JOIN group_chats g
            ON g.tenant = m.tenant AND g.chat_id = m.chat_id
          WHERE m.kind = 2 AND m.left_at IS NOT NULL) AS changes
        ORDER BY at, change, tenant, chat_id, member_id""")


def downgrade() -> None:
    op.drop_table('stats_group_customers')
    op.drop_index('ix_stats_group_daily_day', table_name='stats_group_daily')
    op.drop_table('stats_group_daily')
    op.drop_table('group_customer_changes')
