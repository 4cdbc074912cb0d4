"""customer_field_values: 客户资料, the values of the brand's customer profile fields
(content_library/profile_fields.toml), one row per tenant, customer and field, with who set
it (a guide's userid or "hq") and when

Revision ID: 0063
Revises: 0057
Create Date: 2026-12-07 05:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from guidebot.db.types import UTCDateTime

revision: str = '0063'
down_revision: str | None = '0057'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    op.create_table(
        'customer_field_values',
        sa.Column('tenant', text(length=32), nullable=False),
        sa.Column('external_userid', text(length=128), nullable=False),
        sa.Column('field', text(length=32), nullable=False),
        sa.Column('value', sa.Text(), nullable=False),
        sa.Column('set_by', text(length=64), nullable=False),
        sa.Column('set_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('tenant', 'external_userid', 'field'))


def downgrade() -> None:
    op.drop_table('customer_field_values')
