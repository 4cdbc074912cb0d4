"""customer_notes: 跟进记录, a guide's follow-up notes about a customer; follows.remark and
follows.description: the guide's WeCom remark and description of the customer

Revision ID: 0057
Revises: 0052
Create Date: 2026-12-06 22:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from guidebot.db.types import UTCDateTime

revision: str = '0057'
down_revision: str | None = '0052'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    op.create_table(
        'customer_notes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant', text(length=32), nullable=False),
        sa.Column('external_userid', text(length=128), nullable=False),
        sa.Column('guide', text(length=64), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('follow_up_on', sa.Date(), nullable=True),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_customer_notes_customer', 'customer_notes',
                    ['tenant', 'external_userid', 'id'])
    with op.batch_alter_table('follows') as batch:
        batch.add_column(sa.Column('remark', text(length=128), nullable=False,
                                   server_default=''))
        batch.add_column(sa.Column('description', text(length=512), nullable=False,
                                   server_default=''))
    op.create_index('ix_customer_notes_follow_up', 'customer_notes',
                    ['tenant', 'guide', 'follow_up_on'])


def downgrade() -> None:
    op.drop_index('ix_customer_notes_follow_up', table_name='customer_notes')
    op.drop_index('ix_customer_notes_customer', table_name='customer_notes')
    op.drop_table('customer_notes')
    with op.batch_alter_table('follows') as batch:
        batch.drop_column('description')
        batch.drop_column('remark')
