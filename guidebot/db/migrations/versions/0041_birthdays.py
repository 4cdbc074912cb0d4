"""customer_birthdays (生日关怀), and a round for yearly SOP enrollments: sop_enrollments and
sop_steps get cycle_no (0, or the year a birthday enrollment celebrates), and a step is
unique per (enrollment, round, step), so a re-armed enrollment takes its steps again

Revision ID: 0041
Revises: 0007
Create Date: 2026-12-08 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from guidebot.db.types import UTCDateTime

revision: str = '0041'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_UNIQUE = 'uq_sop_steps_enrollment_cycle_step'
# SQLite names none of its table constraints: the batch (a table copy) names the old one so.
SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_N_name)s"}
OLD_SQLITE = 'uq_sop_steps_enrollment_id_step_index'
OLD_POSTGRES = 'sop_steps_enrollment_id_step_index_key'
PLANNED_WHERE = sa.text("status = 'planned'")


def _steps_unique(columns: list[str], drop: tuple[str, str], make: tuple[str, str]) -> None:
    """Replace sop_steps' unique constraint: (SQLite name, PostgreSQL name) of each."""
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_constraint(drop[1], 'sop_steps', type_='unique')
        op.create_unique_constraint(make[1], 'sop_steps', columns)
        return
    with op.batch_alter_table('sop_steps', naming_convention=SQLITE_NAMES) as batch:
        batch.drop_constraint(drop[0], type_='unique')
        batch.create_unique_constraint(make[0], columns)
    # the copy loses the partial index's WHERE: make it again as 0004 did
    op.drop_index('ix_sop_steps_planned', table_name='sop_steps')
    op.create_index('ix_sop_steps_planned', 'sop_steps', ['tenant', 'due_at'],
                    sqlite_where=PLANNED_WHERE, postgresql_where=PLANNED_WHERE)


def upgrade() -> None:
    op.create_table(
        'customer_birthdays',
        sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('external_userid', sqlmodel.sql.sqltypes.AutoString(length=128),
                  nullable=False),
        sa.Column('month', sa.Integer(), nullable=False),
        sa.Column('day', sa.Integer(), nullable=False),
        sa.Column('year', sa.Integer(), nullable=True),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('tenant', 'external_userid'))
    op.create_index('ix_customer_birthdays_day', 'customer_birthdays',
                    ['tenant', 'month', 'day'])
    with op.batch_alter_table('sop_enrollments') as batch:
        batch.add_column(sa.Column('cycle_no', sa.Integer(), nullable=False,
                                   server_default='0'))
    with op.batch_alter_table('sop_steps') as batch:
        batch.add_column(sa.Column('cycle_no', sa.Integer(), nullable=False,
                                   server_default='0'))
    _steps_unique(['enrollment_id', 'cycle_no', 'step_index'], (OLD_SQLITE, OLD_POSTGRES),
                  (NEW_UNIQUE, NEW_UNIQUE))


def downgrade() -> None:
    _steps_unique(['enrollment_id', 'step_index'], (NEW_UNIQUE, NEW_UNIQUE),
                  (OLD_SQLITE, OLD_POSTGRES))
    with op.batch_alter_table('sop_steps') as batch:
        batch.drop_column('cycle_no')
    with op.batch_alter_table('sop_enrollments') as batch:
        batch.drop_column('cycle_no')
    op.drop_index('ix_customer_birthdays_day', table_name='customer_birthdays')
    op.drop_table('customer_birthdays')
