"""pretags.outbox_key: a pre-tag handed to the outbox is being marked (or failed, when its
outbox row died) until WeCom accepted the mark; pre-tags recorded applied before it whose
mark_tag row is not done go back to being marked

Revision ID: 0059
Revises: 0053
Create Date: 2026-12-07 04:50:00
"""

import hashlib
import json
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0059'
down_revision: str | None = '0053'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY_CHARS = 160  # the outbox key column


def _key(customer: str, tag_id: str) -> str:
    """guidebot/contacts/auto_tags.py's mark_key with the `pretag` prefix, as of this migration."""
    key = f"pretag:{customer}:{tag_id}"
    if len(key) <= KEY_CHARS:
        return key
    digest = hashlib.sha256("\x1f".join((customer, tag_id)).encode()).hexdigest()[:40]
    return f"pretag:h{digest}"


def upgrade() -> None:
    op.add_column('pretags', sa.Column('outbox_key', sqlmodel.sql.sqltypes.AutoString(
        length=160), nullable=False, server_default=''))
    bind = op.get_bind()
    pretags = sa.table('pretags', sa.column('tenant'), sa.column('unionid'),
                       sa.column('tag_id'), sa.column('external_userid'),
                       sa.column('applied_at'), sa.column('outbox_key'))
    outbox = sa.table('outbox', sa.column('id'), sa.column('tenant'), sa.column('key'),
                      sa.column('status'), sa.column('payload'))
    rows = bind.execute(sa.select(pretags.c.tenant, pretags.c.unionid, pretags.c.tag_id,
                                  pretags.c.external_userid)
                        .where(pretags.c.applied_at.is_not(None))).all()
    for tenant, unionid, tag_id, customer in rows:
        key = _key(customer, tag_id)
        call = bind.execute(sa.select(outbox.c.id, outbox.c.status, outbox.c.payload).where(
            outbox.c.tenant == tenant, outbox.c.key == key)).first()
        values: dict[str, object] = {'outbox_key': key}
        if call is not None and call.status != 'done':
            # handed over but not (yet) accepted: being marked, or failed; its retry records
            # it applied (the mark_tag executor reads the unionid from the payload)
            values['applied_at'] = None
            payload = json.loads(call.payload)
            payload['pretag'] = unionid
            bind.execute(sa.update(outbox).where(outbox.c.id == call.id).values(
                payload=json.dumps(payload)))
        bind.execute(sa.update(pretags).where(
            pretags.c.tenant == tenant, pretags.c.unionid == unionid,
            pretags.c.tag_id == tag_id).values(**values))


def downgrade() -> None:
    with op.batch_alter_table('pretags') as batch:
        batch.drop_column('outbox_key')
