"""opt_outs.tag_id: the corp tag id an opt-out marked on the customer's relations, so an undo
takes off that tag even after chat/opt_out.toml names another one (NULL for opt-outs
recorded before: their undo takes off the tag the file names then)

Revision ID: 0055
Revises: 0007
Create Date: 2026-12-07 01:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0055'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = ('0017',)  # the opt_outs table


def upgrade() -> None:
    with op.batch_alter_table('opt_outs') as batch:
        batch.add_column(sa.Column('tag_id', sqlmodel.sql.sqltypes.AutoString(length=64),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('opt_outs') as batch:
        batch.drop_column('tag_id')
