"""kf: 微信客服 sync cursors, messages (unique msgid) and per-session send counts

Revision ID: 0011
Revises: 0007
Create Date: 2026-12-03 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import guidebot.db.types

revision: str = '0011'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _s(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    utc = guidebot.db.types.UTCDateTime
    op.create_table(
        'kf_cursors',
        sa.Column('tenant', _s(32), nullable=False),
        sa.Column('open_kfid', _s(64), nullable=False),
        sa.Column('cursor', _s(64), nullable=False),
        sa.Column('created_at', utc(), nullable=False),
        sa.Column('updated_at', utc(), nullable=False),
        sa.PrimaryKeyConstraint('tenant', 'open_kfid'))
    op.create_table(
        'kf_messages',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant', _s(32), nullable=False),
        sa.Column('open_kfid', _s(64), nullable=False),
        sa.Column('msgid', _s(128), nullable=False),
        sa.Column('external_userid', _s(128), nullable=False),
        sa.Column('origin', sa.Integer(), nullable=False),
        sa.Column('msgtype', _s(32), nullable=False),
        sa.Column('event_type', _s(32), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('send_time', utc(), nullable=False),
        sa.Column('status', _s(16), nullable=False),
        sa.Column('route', _s(16), nullable=False),
        sa.Column('reason', _s(128), nullable=False),
        sa.Column('guide', _s(64), nullable=True),
        sa.Column('received_at', utc(), nullable=False),
        sa.Column('handled_at', utc(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('tenant', 'msgid', name='uq_kf_messages_msgid'))
    op.create_index('ix_kf_messages_customer', 'kf_messages',
                    ['tenant', 'external_userid', 'send_time'])
    op.create_index('ix_kf_messages_status', 'kf_messages', ['tenant', 'open_kfid', 'status'])
    op.create_table(
        'kf_sessions',
        sa.Column('tenant', _s(32), nullable=False),
        sa.Column('open_kfid', _s(64), nullable=False),
        sa.Column('external_userid', _s(128), nullable=False),
        sa.Column('last_customer_at', utc(), nullable=False),
        sa.Column('sent', sa.Integer(), nullable=False),
        sa.Column('updated_at', utc(), nullable=False),
        sa.PrimaryKeyConstraint('tenant', 'open_kfid', 'external_userid'))


def downgrade() -> None:
    op.drop_table('kf_sessions')
    op.drop_index('ix_kf_messages_status', table_name='kf_messages')
    op.drop_index('ix_kf_messages_customer', table_name='kf_messages')
    op.drop_table('kf_messages')
    op.drop_table('kf_cursors')
