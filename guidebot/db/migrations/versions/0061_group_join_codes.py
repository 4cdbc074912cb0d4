"""group_join_codes: 群活码, a 加入群聊 way (groupchat/add_join_way) guidebot made for 1–5 of a
tenant's groups with its QR code, campaign, store and compact state; group_members.join_state
and group_customer_changes.state keep the state a customer joined through, so joins are
counted per code

Revision ID: 0061
Revises: 0060
Create Date: 2026-12-07 05:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from guidebot.db.types import UTCDateTime

revision: str = '0061'
down_revision: str | None = '0060'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_S = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        'group_join_codes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant', _S(length=32), nullable=False),
        sa.Column('config_id', _S(length=128), nullable=False),
        sa.Column('qr_code', _S(length=512), nullable=False),
        sa.Column('state', _S(length=30), nullable=False),
        sa.Column('campaign', _S(length=30), nullable=False),
        sa.Column('store_id', _S(length=64), nullable=True),
        sa.Column('chat_ids', sa.Text(), nullable=False),
        sa.Column('auto_create_room', sa.Boolean(), nullable=False),
        sa.Column('room_base_name', _S(length=40), nullable=False),
        sa.Column('room_base_id', sa.Integer(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('deleted_at', UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_group_join_codes_tenant', 'group_join_codes', ['tenant'])
    with op.batch_alter_table('group_members') as batch:
        batch.add_column(sa.Column('join_state', _S(length=30), nullable=False,
                                   server_default=''))
    with op.batch_alter_table('group_customer_changes') as batch:
        batch.add_column(sa.Column('state', _S(length=30), nullable=False,
                                   server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('group_customer_changes') as batch:
        batch.drop_column('state')
    with op.batch_alter_table('group_members') as batch:
        batch.drop_column('join_state')
    op.drop_index('ix_group_join_codes_tenant', table_name='group_join_codes')
    op.drop_table('group_join_codes')
