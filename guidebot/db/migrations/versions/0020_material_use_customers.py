"""materials: the customers each use reached (material_use_customers), so an SOP step's or
drop's 群发 task counts every customer it reached; filled from material_uses' one customer

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0020'
down_revision: str | None = '0019'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_S = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        'material_use_customers',
        sa.Column('tenant', _S(length=32), nullable=False),
        sa.Column('use_key', _S(length=128), nullable=False),
        sa.Column('customer', _S(length=128), nullable=False),
        sa.Column('material_id', _S(length=64), nullable=False),
        sa.PrimaryKeyConstraint('tenant', 'use_key', 'customer'))
    op.create_index('ix_material_use_customers_material', 'material_use_customers',
                    ['tenant', 'material_id', 'customer'])
    # the uses recorded so far name at most one customer each
    op.execute("INSERT INTO material_use_customers (tenant, use_key, customer, material_id) "
               "SELECT tenant, key, customer, material_id FROM material_uses "
               "WHERE customer != ''")


def downgrade() -> None:
    op.drop_index('ix_material_use_customers_material', table_name='material_use_customers')
    op.drop_table('material_use_customers')
