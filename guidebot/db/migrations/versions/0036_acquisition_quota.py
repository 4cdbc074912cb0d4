"""acquisition_quotas: each tenant's last reading of its paid 获客助手 quota; channel_codes
.wecom_status: a link WeCom said became unavailable or was deleted there

Revision ID: 0036
Revises: 0007
Create Date: 2026-12-06 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from guidebot.db.types import UTCDateTime

revision: str = '0036'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'acquisition_quotas',
        sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.Column('balance', sa.Integer(), nullable=False),
        sa.Column('quota_list', sa.Text(), nullable=False),
        sa.Column('read_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('tenant'),
    )
    with op.batch_alter_table('channel_codes') as batch:
        batch.add_column(sa.Column('wecom_status', sqlmodel.sql.sqltypes.AutoString(length=16),
                                   nullable=False, server_default=''))
        batch.add_column(sa.Column('wecom_status_at', UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('channel_codes') as batch:
        batch.drop_column('wecom_status_at')
        batch.drop_column('wecom_status')
    op.drop_table('acquisition_quotas')
