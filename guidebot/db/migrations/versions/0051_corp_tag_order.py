"""corp_tags.tag_order and group_order: the order WeCom gives a tag and its group, mirrored
for the console's 标签管理 and GET /api/v1/{t}/tags

Revision ID: 0051
Revises: 0007
Create Date: 2026-12-06 19:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0051'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('corp_tags') as batch:
        batch.add_column(sa.Column('tag_order', sa.BigInteger(), nullable=False,
                                   server_default='0'))
        batch.add_column(sa.Column('group_order', sa.BigInteger(), nullable=False,
                                   server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('corp_tags') as batch:
        batch.drop_column('group_order')
        batch.drop_column('tag_order')
