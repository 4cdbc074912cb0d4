"""audit_log: 操作日志, HQ's changes and console sign-ins (who, when, route, path ids, status)

Revision ID: 0066
Revises: 0065
Create Date: 2026-12-07 07:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from guidebot.db.types import UTCDateTime

revision: str = '0066'
down_revision: str | None = '0065'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    op.create_table(
        'audit_log',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant', text(length=32), nullable=False),
        sa.Column('at', UTCDateTime(), nullable=False),
        sa.Column('actor', text(length=64), nullable=False),
        sa.Column('action', text(length=200), nullable=False),
        sa.Column('params', sa.Text(), nullable=False),
        sa.Column('status', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_audit_log_tenant_at', 'audit_log', ['tenant', 'at', 'id'])


def downgrade() -> None:
    op.drop_index('ix_audit_log_tenant_at', table_name='audit_log')
    op.drop_table('audit_log')
