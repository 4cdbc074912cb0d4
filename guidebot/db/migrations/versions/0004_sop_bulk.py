"""sop: indexes for set-based planning (a branch off 0002)

Steps due at once are born "queued" in their task and a sent task no longer rewrites its
steps, so no index on sop_steps holds a status that changes in bulk; a task's customers are
read from a covering index. A customer's steps are found through their enrollments (no wide
per-customer index on steps to rewrite at random every wave); an enrollment carries the quota
its own steps used.

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-01 20:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PLANNED = sa.text("status = 'planned'")


def upgrade() -> None:
    with op.batch_alter_table('sop_steps', schema=None) as batch_op:
        batch_op.drop_index('ix_sop_steps_due')
        batch_op.drop_index('ix_sop_steps_group')
        batch_op.drop_index('ix_sop_steps_customer')
        batch_op.drop_index('ix_sop_steps_task')
        batch_op.create_index('ix_sop_steps_planned', ['tenant', 'due_at'], unique=False,
                              sqlite_where=PLANNED, postgresql_where=PLANNED)
        batch_op.create_index('ix_sop_steps_task_customers', ['task_id', 'status',
                                                              'external_userid'], unique=False)
    with op.batch_alter_table('sop_enrollments', schema=None) as batch_op:
        # existing enrollments: quota state unknown (NULL), they take the per-row planner
        batch_op.add_column(sa.Column('quota_period', sa.String(length=24), nullable=True))
        batch_op.add_column(sa.Column('quota_used', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.drop_index('ix_sop_enrollments_customer')
        batch_op.create_index('ix_sop_enrollments_customer_status',
                              ['tenant', 'external_userid', 'status'], unique=False)
        batch_op.drop_index('ix_sop_enrollments_due')
        batch_op.create_index('ix_sop_enrollments_due', ['tenant', 'status', 'next_at', 'id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('sop_enrollments', schema=None) as batch_op:
        batch_op.drop_index('ix_sop_enrollments_due')
        batch_op.create_index('ix_sop_enrollments_due', ['status', 'next_at'], unique=False)
        batch_op.drop_index('ix_sop_enrollments_customer_status')
        batch_op.drop_column('quota_used')
        batch_op.drop_column('quota_period')
        batch_op.create_index('ix_sop_enrollments_customer', ['tenant', 'external_userid'],
                              unique=False)
    with op.batch_alter_table('sop_steps', schema=None) as batch_op:
        batch_op.drop_index('ix_sop_steps_task_customers')
        batch_op.drop_index('ix_sop_steps_planned')
        batch_op.create_index('ix_sop_steps_task', ['task_id'], unique=False)
        batch_op.create_index('ix_sop_steps_customer', ['tenant', 'external_userid'],
                              unique=False)
        batch_op.create_index('ix_sop_steps_due', ['status', 'due_at'], unique=False)
        batch_op.create_index('ix_sop_steps_group', ['status', 'guide', 'sop_id', 'step_index',
                                                     'due_at'], unique=False)
