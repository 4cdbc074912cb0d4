"""channel_codes: 自动通过好友 — whether WeCom adds a customer without the guide's
confirmation (skip_verify), an optional window of the tenant's day for it
(auto_accept_hours "HH:MM-HH:MM"), what WeCom was last told (skip_verify_now: every code
made before was made with skip_verify true) and the outbox key of the last change asked

Revision ID: 0062
Revises: 0036
Create Date: 2026-12-07 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0062'
down_revision: str | None = '0036'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_S = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    with op.batch_alter_table('channel_codes') as batch:
        batch.add_column(sa.Column('skip_verify', sa.Boolean(), nullable=False,
                                   server_default=sa.true()))
        batch.add_column(sa.Column('auto_accept_hours', _S(length=11), nullable=False,
                                   server_default=''))
        batch.add_column(sa.Column('skip_verify_now', sa.Boolean(), nullable=False,
                                   server_default=sa.true()))
        batch.add_column(sa.Column('skip_verify_key', _S(length=160), nullable=False,
                                   server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('channel_codes') as batch:
        for column in ('skip_verify_key', 'skip_verify_now', 'auto_accept_hours',
                       'skip_verify'):
            batch.drop_column(column)
