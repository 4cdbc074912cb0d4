"""kf_messages.servicer_userid: who sent a servicer's message from the WeCom client (origin 5),
for 接待时效 (first response after a handoff, customers waiting for a reply), and an index by
send_time (the conversations whose customer wrote in the last 48 h, read every minute)

Revision ID: 0046
Revises: 0011
Create Date: 2026-12-06 18:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0046'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('kf_messages') as batch:
        batch.add_column(sa.Column('servicer_userid',
                                   sqlmodel.sql.sqltypes.AutoString(length=64),
                                   nullable=False, server_default=''))
        batch.create_index('ix_kf_messages_time', ['tenant', 'send_time'])


def downgrade() -> None:
    with op.batch_alter_table('kf_messages') as batch:
        batch.drop_index('ix_kf_messages_time')
        batch.drop_column('servicer_userid')
