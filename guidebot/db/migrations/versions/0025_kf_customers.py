"""kf: 微信客服 customers' unionids as kf/customer/batchget gave them (kf_customers), so a
conversation matched to a contact only through its unionid shows on that contact's page

Revision ID: 0025
Revises: 0007
Create Date: 2026-12-03 19:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from guidebot.db.types import UTCDateTime

revision: str = '0025'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = ('0011',)  # the kf tables

_S = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        'kf_customers',
        sa.Column('tenant', _S(length=32), nullable=False),
        sa.Column('external_userid', _S(length=128), nullable=False),
        sa.Column('unionid', _S(length=128), nullable=False),
        sa.Column('seen_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('tenant', 'external_userid'))
    op.create_index('ix_kf_customers_unionid', 'kf_customers', ['tenant', 'unionid'])


def downgrade() -> None:
    op.drop_index('ix_kf_customers_unionid', table_name='kf_customers')
    op.drop_table('kf_customers')
