"""materials: materials, versions, pieces, uses, points ledger and webhook deliveries

Revision ID: 0019
Revises: 0007
Create Date: 2026-12-03 13:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import guidebot.db.types

revision: str = '0019'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('material_pieces',
    sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('msg_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('guide', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('media_id', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
    sa.Column('stored', sqlmodel.sql.sqltypes.AutoString(length=96), nullable=False),
    sa.Column('problem', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('material_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('received_at', guidebot.db.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'msg_id')
    )
    with op.batch_alter_table('material_pieces', schema=None) as batch_op:
        batch_op.create_index('ix_material_pieces_guide', ['tenant', 'guide', 'material_id'], unique=False)

    op.create_table('material_uses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('material_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('guide', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('customer', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('day', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('token', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('at', guidebot.db.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant', 'key')
    )
    with op.batch_alter_table('material_uses', schema=None) as batch_op:
        batch_op.create_index('ix_material_uses_material', ['tenant', 'material_id'], unique=False)

    op.create_table('material_versions',
    sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('material_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('editor', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', guidebot.db.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'material_id', 'version')
    )
    op.create_table('materials',
    sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('contributor', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('pictures', sa.Text(), nullable=False),
    sa.Column('video', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
    sa.Column('link', sa.Text(), nullable=False),
    sa.Column('skus', sa.Text(), nullable=False),
    sa.Column('categories', sa.Text(), nullable=False),
    sa.Column('occasions', sa.Text(), nullable=False),
    sa.Column('flags', sa.Text(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
    sa.Column('grade', sqlmodel.sql.sqltypes.AutoString(length=1), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('reviewed_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('reviewed_at', guidebot.db.types.UTCDateTime(), nullable=True),
    sa.Column('created_at', guidebot.db.types.UTCDateTime(), nullable=False),
    sa.Column('updated_at', guidebot.db.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'id')
    )
    with op.batch_alter_table('materials', schema=None) as batch_op:
        batch_op.create_index('ix_materials_contributor', ['tenant', 'contributor'], unique=False)
        batch_op.create_index('ix_materials_queue', ['tenant', 'status', 'created_at'], unique=False)

    op.create_table('points_deliveries',
    sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('entry_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('delivered_at', guidebot.db.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'entry_id')
    )
    op.create_table('points_ledger',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=160), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('guide', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('material_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('grade', sqlmodel.sql.sqltypes.AutoString(length=1), nullable=False),
    sa.Column('user', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('period', sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
    sa.Column('operator', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', guidebot.db.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant', 'key')
    )
    with op.batch_alter_table('points_ledger', schema=None) as batch_op:
        batch_op.create_index('ix_points_ledger_period', ['tenant', 'period'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('points_ledger', schema=None) as batch_op:
        batch_op.drop_index('ix_points_ledger_period')

    op.drop_table('points_ledger')
    op.drop_table('points_deliveries')
    with op.batch_alter_table('materials', schema=None) as batch_op:
        batch_op.drop_index('ix_materials_queue')
        batch_op.drop_index('ix_materials_contributor')

    op.drop_table('materials')
    op.drop_table('material_versions')
    with op.batch_alter_table('material_uses', schema=None) as batch_op:
        batch_op.drop_index('ix_material_uses_material')

    op.drop_table('material_uses')
    with op.batch_alter_table('material_pieces', schema=None) as batch_op:
        batch_op.drop_index('ix_material_pieces_guide')

    op.drop_table('material_pieces')
