"""segment_tag_runs: 批量打标签 runs staged in the background; customer_segments.last_count and
counted_at: the count the segment list shows without counting every segment

Revision ID: 0052
Revises: 0045
Create Date: 2026-12-06 21:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from guidebot.db.types import UTCDateTime

revision: str = '0052'
down_revision: str | None = '0045'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('customer_segments') as batch:
        batch.add_column(sa.Column('last_count', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('counted_at', UTCDateTime(), nullable=True))
    text = sqlmodel.sql.sqltypes.AutoString
    op.create_table(
        'segment_tag_runs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant', text(length=32), nullable=False),
        sa.Column('segment_id', sa.Integer(), nullable=False),
        sa.Column('tag_id', text(length=64), nullable=False),
        sa.Column('tag', text(length=64), nullable=False),
        sa.Column('state', text(length=16), nullable=False),
        sa.Column('matched', sa.Integer(), nullable=False),
        sa.Column('queued', sa.Integer(), nullable=False),
        sa.Column('carrying', sa.Integer(), nullable=False),
        sa.Column('no_guide', sa.Integer(), nullable=False),
        sa.Column('repeated', sa.Integer(), nullable=False),
        sa.Column('cursor', sa.Text(), nullable=False),
        sa.Column('first_outbox_id', sa.Integer(), nullable=True),
        sa.Column('last_outbox_id', sa.Integer(), nullable=True),
        sa.Column('error', text(length=256), nullable=False),
        sa.Column('operator', text(length=64), nullable=False),
        sa.Column('lease_owner', text(length=40), nullable=False),
        sa.Column('lease_until', UTCDateTime(), nullable=True),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('finished_at', UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_segment_tag_runs_segment', 'segment_tag_runs',
                    ['tenant', 'segment_id', 'id'])
    op.create_index('ix_segment_tag_runs_state', 'segment_tag_runs', ['state', 'lease_until'])


def downgrade() -> None:
    op.drop_index('ix_segment_tag_runs_state', table_name='segment_tag_runs')
    op.drop_index('ix_segment_tag_runs_segment', table_name='segment_tag_runs')
    op.drop_table('segment_tag_runs')
    with op.batch_alter_table('customer_segments') as batch:
        batch.drop_column('counted_at')
        batch.drop_column('last_count')
