"""customer_segments: saved customer segments (客户分群), a named filter over a tenant's
customers

Revision ID: 0045
Revises: 0007
Create Date: 2026-12-06 18:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from guidebot.db.types import UTCDateTime

revision: str = '0045'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'customer_segments',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('conditions', sa.Text(), nullable=False),
        sa.Column('operator', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sqlite_autoincrement=True)  # ids never reused: a drop names its segment by id
    op.create_index('ix_customer_segments_tenant', 'customer_segments', ['tenant'])


def downgrade() -> None:
    op.drop_index('ix_customer_segments_tenant', table_name='customer_segments')
    op.drop_table('customer_segments')
