"""retention (guidebot/retention.py): the inbox's index on processed_at becomes one on
(tenant, processed_at), so the daily delete of a tenant's old handled items reads only them
(SQLite otherwise walked the tenant's whole inbox by its (tenant, digest) key); the same
number of indexes on the callbacks' hot table. kf_messages gets a partial index of the text
messages whose text is still kept, so blanking reads only the texts it blanks, never the
ones it blanked before

Revision ID: 0064
Revises: 0048
Create Date: 2026-12-07 07:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0064'
down_revision: str | None = '0048'  # kf_messages (0011, 0048); the inbox (0001)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEPT = sa.text("msgtype = 'text' AND text != ''")


def upgrade() -> None:
    op.create_index('ix_inbox_handled', 'inbox', ['tenant', 'processed_at'], unique=False)
    op.drop_index('ix_inbox_processed_at', table_name='inbox')
    op.create_index('ix_kf_messages_text_kept', 'kf_messages', ['tenant', 'send_time'],
                    unique=False, sqlite_where=KEPT, postgresql_where=KEPT)


def downgrade() -> None:
    op.drop_index('ix_kf_messages_text_kept', table_name='kf_messages')
    op.create_index('ix_inbox_processed_at', 'inbox', ['processed_at'], unique=False)
    op.drop_index('ix_inbox_handled', table_name='inbox')
