"""channel_codes.kind: a 「联系我」 QR code (qr) or a 获客助手 acquisition link (link)

Revision ID: 0033
Revises: 0007
Create Date: 2026-12-06 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0033'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('channel_codes') as batch:
        batch.add_column(sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=8),
                                   nullable=False, server_default='qr'))


def downgrade() -> None:
    with op.batch_alter_table('channel_codes') as batch:
        batch.drop_column('kind')
