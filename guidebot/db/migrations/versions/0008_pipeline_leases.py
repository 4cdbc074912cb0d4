"""pipeline: inbox claims are leases (owner, until; retries wait in lease_until) with a
per-customer ordering key; outbox "sending" rows carry a lease too

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import guidebot.db.types

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('inbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('order_key', sqlmodel.sql.sqltypes.AutoString(length=160),
                                      nullable=False, server_default=''))
        batch_op.add_column(sa.Column('lease_owner', sqlmodel.sql.sqltypes.AutoString(length=40),
                                      nullable=False, server_default=''))
        batch_op.add_column(sa.Column('lease_until', guidebot.db.types.UTCDateTime(),
                                      nullable=True))
    # The claim's two questions: what is pending (by id), and is an earlier item of the same
    # customer still pending (head of line). Partial indexes stay as small as the backlog.
    op.create_index('ix_inbox_pending', 'inbox', ['id'], unique=False,
                    sqlite_where=sa.text('processed_at IS NULL'),
                    postgresql_where=sa.text('processed_at IS NULL'))
    op.create_index('ix_inbox_pending_key', 'inbox', ['tenant', 'order_key', 'id'], unique=False,
                    sqlite_where=sa.text('processed_at IS NULL'),
                    postgresql_where=sa.text('processed_at IS NULL'))
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_owner', sqlmodel.sql.sqltypes.AutoString(length=40),
                                      nullable=False, server_default=''))
        batch_op.add_column(sa.Column('lease_until', guidebot.db.types.UTCDateTime(),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('lease_until')
        batch_op.drop_column('lease_owner')
    op.drop_index('ix_inbox_pending_key', table_name='inbox')
    op.drop_index('ix_inbox_pending', table_name='inbox')
    with op.batch_alter_table('inbox', schema=None) as batch_op:
        batch_op.drop_column('lease_until')
        batch_op.drop_column('lease_owner')
        batch_op.drop_column('order_key')
