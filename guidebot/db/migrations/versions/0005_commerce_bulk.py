"""commerce: a covering index for the bulk path's touch reads (a branch off 0003)

The bulk path reads every touch of a range of customers in a time span; with the key columns
alone each index entry costs a table lookup for the guide, token and kind. This index holds
them, so the read is one index range scan. ix_commerce_touches_customer stays: the per-order
path and the customer view read whole rows through it (narrower entries).

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-01 22:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0005'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_commerce_touches_decide', 'commerce_touches',
                    ['tenant', 'external_userid', 'at', 'kind', 'guide', 'token'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_commerce_touches_decide', table_name='commerce_touches')
