"""channel_codes: several guides per code (多人活码), a daily add limit per guide with backup
guides, and the members WeCom is asked to serve now; follows indexed by channel code and add
time (today's adds through a code)

Revision ID: 0034
Revises: 0007
Create Date: 2026-12-06 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0034'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('channel_codes') as batch:
        batch.add_column(sa.Column('guides', sa.Text(), nullable=False, server_default='[]'))
        batch.add_column(sa.Column('backup_guides', sa.Text(), nullable=False,
                                   server_default='[]'))
        batch.add_column(sa.Column('daily_limit', sa.Integer(), nullable=False,
                                   server_default='0'))
        batch.add_column(sa.Column('serving', sa.Text(), nullable=False, server_default='[]'))
        batch.add_column(sa.Column('serving_day', sqlmodel.sql.sqltypes.AutoString(length=10),
                                   nullable=False, server_default=''))
    op.create_index('ix_follows_code_added', 'follows',
                    ['tenant', 'channel_code_id', 'added_at'])


def downgrade() -> None:
    op.drop_index('ix_follows_code_added', table_name='follows')
    with op.batch_alter_table('channel_codes') as batch:
        for column in ('serving_day', 'serving', 'daily_limit', 'backup_guides', 'guides'):
            batch.drop_column(column)
