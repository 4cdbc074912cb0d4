"""customer_erasures: 删除客户个人信息, one row per erased customer (the tombstone that
replaced its id in the records kept, when, through what, the rows touched per table)

Revision ID: 0065
Revises: 0064
Create Date: 2026-12-07 07:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from guidebot.db.types import UTCDateTime

revision: str = '0065'
down_revision: str | None = '0064'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    op.create_table(
        'customer_erasures',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant', text(length=32), nullable=False),
        sa.Column('tombstone', text(length=64), nullable=False),
        sa.Column('erased_at', UTCDateTime(), nullable=False),
        sa.Column('by', text(length=16), nullable=False),
        sa.Column('counts', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id'))
    op.create_index(op.f('ix_customer_erasures_tenant'), 'customer_erasures', ['tenant'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_customer_erasures_tenant'), table_name='customer_erasures')
    op.drop_table('customer_erasures')
