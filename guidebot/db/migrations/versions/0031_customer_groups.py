"""group_chats and group_members: customer groups (客户群) and who joined and left them

Revision ID: 0031
Revises: 0007
Create Date: 2026-12-06 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from guidebot.db.types import UTCDateTime

revision: str = '0031'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_S = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        'group_chats',
        sa.Column('tenant', _S(length=32), nullable=False),
        sa.Column('chat_id', _S(length=64), nullable=False),
        sa.Column('name', _S(length=128), nullable=False),
        sa.Column('owner', _S(length=64), nullable=False),
        sa.Column('status', sa.Integer(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=True),
        sa.Column('dismissed_at', UTCDateTime(), nullable=True),
        sa.Column('member_version', _S(length=64), nullable=False),
        sa.Column('customers', sa.Integer(), nullable=False),
        sa.Column('staff', sa.Integer(), nullable=False),
        sa.Column('synced_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('tenant', 'chat_id'))
    op.create_index('ix_group_chats_owner', 'group_chats', ['tenant', 'owner'])
    op.create_table(
        'group_members',
        sa.Column('tenant', _S(length=32), nullable=False),
        sa.Column('chat_id', _S(length=64), nullable=False),
        sa.Column('member_id', _S(length=128), nullable=False),
        sa.Column('kind', sa.Integer(), nullable=False),
        sa.Column('joined_at', UTCDateTime(), nullable=True),
        sa.Column('join_scene', sa.Integer(), nullable=False),
        sa.Column('invitor', _S(length=64), nullable=False),
        sa.Column('left_at', UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('tenant', 'chat_id', 'member_id'))
    op.create_index('ix_group_members_member', 'group_members', ['tenant', 'member_id'])
    op.create_index('ix_group_members_joined', 'group_members', ['tenant', 'joined_at'])
    op.create_index('ix_group_members_left', 'group_members', ['tenant', 'left_at'])


def downgrade() -> None:
    op.drop_index('ix_group_members_left', table_name='group_members')
    op.drop_index('ix_group_members_joined', table_name='group_members')
    op.drop_index('ix_group_members_member', table_name='group_members')
    op.drop_table('group_members')
    op.drop_index('ix_group_chats_owner', table_name='group_chats')
    op.drop_table('group_chats')
