"""app_message_sends: every app message to a guide, so SOP reminders and notifications,
handoff notices, command answers, material reviews and 删人提醒 share one per-guide minute
budget (app_msg_per_guide_per_min) exactly, across processes

Revision ID: 0029
Revises: 0007
Create Date: 2026-12-06 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from guidebot.db.types import UTCDateTime

revision: str = '0029'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_S = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        'app_message_sends',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant', _S(length=32), nullable=False),
        sa.Column('guide', _S(length=64), nullable=False),
        sa.Column('at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_app_message_sends_guide_at', 'app_message_sends',
                    ['tenant', 'guide', 'at'])


def downgrade() -> None:
    op.drop_index('ix_app_message_sends_guide_at', table_name='app_message_sends')
    op.drop_table('app_message_sends')
