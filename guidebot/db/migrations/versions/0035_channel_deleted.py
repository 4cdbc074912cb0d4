"""channel_codes.deleted_at: a code HQ deleted (del_contact_way / delete_link); kept for the
customers it brought

Revision ID: 0035
Revises: 0007
Create Date: 2026-12-06 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from guidebot.db.types import UTCDateTime

revision: str = '0035'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('channel_codes') as batch:
        batch.add_column(sa.Column('deleted_at', UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('channel_codes') as batch:
        batch.drop_column('deleted_at')
