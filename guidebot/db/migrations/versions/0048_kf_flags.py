"""kf_flags: 会话质检, the 微信客服 messages holding a word of a chat/watch_words.toml rule
(once per message and rule), and whether an alert rule's flag was handed to the outbox

Revision ID: 0048
Revises: 0011
Create Date: 2026-12-06 19:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from guidebot.db.types import UTCDateTime

revision: str = '0048'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    string = sqlmodel.sql.sqltypes.AutoString
    op.create_table(
        'kf_flags',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant', string(length=32), nullable=False),
        sa.Column('msgid', string(length=128), nullable=False),
        sa.Column('open_kfid', string(length=64), nullable=False),
        sa.Column('external_userid', string(length=128), nullable=False),
        sa.Column('guide', string(length=64), nullable=False),
        sa.Column('origin', sa.Integer(), nullable=False),
        sa.Column('rule', string(length=32), nullable=False),
        sa.Column('word', string(length=32), nullable=False),
        sa.Column('level', string(length=8), nullable=False),
        sa.Column('send_time', UTCDateTime(), nullable=False),
        sa.Column('flagged_at', UTCDateTime(), nullable=False),
        sa.Column('notified_at', UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('tenant', 'msgid', 'rule', name='uq_kf_flags_rule'))
    op.create_index('ix_kf_flags_time', 'kf_flags', ['tenant', 'send_time'])
    op.create_index('ix_kf_flags_unnotified', 'kf_flags', ['tenant', 'notified_at'])


def downgrade() -> None:
    op.drop_table('kf_flags')
