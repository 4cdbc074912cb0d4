"""Singleton scans: tags marked since the last pass (tag_added) and deleted relations."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from guidebot.db.engine import Database
from guidebot.db.repo import sop_tasks as repo
from guidebot.db.types import utcnow
from guidebot.sop.engine import SopEngine

log = logging.getLogger(__name__)

# Tag rows commit in any order across processes: look back over this much of the past pass.
OVERLAP = timedelta(minutes=1)


async def scan_tags(db: Database, engine: SopEngine, tenant: str) -> int:
    async with db.read() as s:
        mark = await repo.get_cursor(s, tenant=tenant, name="scan:tags")
    since = datetime.fromisoformat(mark) - OVERLAP if mark else utcnow() - OVERLAP
    async with db.read() as s:
        rows = await repo.tags_added_since(s, tenant=tenant, since=since)
    for customer, guide, tag, at in rows:
        await engine.on_tag_added(tenant, customer, guide, tag, at)
    newest = max([at for *_, at in rows], default=since + OVERLAP)
    async with db.write() as s:
        await repo.set_cursor(s, tenant=tenant, name="scan:tags", value=newest.isoformat())
    return len(rows)


async def scan_deletions(db: Database, engine: SopEngine, tenant: str) -> int:
    async with db.read() as s:
        mark = int(await repo.get_cursor(s, tenant=tenant, name="scan:follows") or 0)
        rows = await repo.deletions_after(s, tenant=tenant, after_id=mark)
    for row in rows:
        await engine.exit(tenant, row.external_userid, "contact_deleted", guide=row.guide)
    if rows:
        async with db.write() as s:
            await repo.set_cursor(s, tenant=tenant, name="scan:follows", value=str(rows[-1].id))
    return len(rows)
