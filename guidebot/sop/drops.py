"""Content drops: on a cron or at a time, one guide task (or moment) per guide in the audience."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from guidebot.db.engine import Database
from guidebot.db.repo import sop_tasks as repo
from guidebot.db.types import utcnow
from guidebot.settings import TenantSettings
from guidebot.sop.cron import next_fire, parse_cron
from guidebot.sop.spec import DropSpec
from guidebot.sop.tasking import MAX_RECIPIENTS

log = logging.getLogger(__name__)

LATE_LIMIT = timedelta(days=1)


def due_firing(drop: DropSpec, last: str, now: datetime, tenant: TenantSettings) -> str | None:
    """The firing (ISO) due now and not yet done, or None. A new cron drop starts from now:
    firings before guidebot first saw it are not made up."""
    if drop.at:
        when = datetime.fromisoformat(drop.at)
        # A one-off drop more than LATE_LIMIT in the past when first seen is not sent late.
        return when.isoformat() if when <= now < when + LATE_LIMIT and not last else None
    if not last:
        return None
    fire = next_fire(parse_cron(drop.cron), datetime.fromisoformat(last), tenant.tz)
    return fire.isoformat() if fire is not None and fire <= now else None


async def run_drops(db: Database, tenant: TenantSettings, drops: Mapping[str, DropSpec], *,
                    clock: Callable[[], datetime] = utcnow) -> int:
    """Fire due drops (call under the singleton lock); returns how many tasks were queued."""
    now, queued = clock(), 0
    for drop in drops.values():
        if not drop.enabled:
            continue
        name = f"drop:{drop.id}"
        async with db.read() as s:
            last = await repo.get_cursor(s, tenant=tenant.id, name=name)
        if drop.cron and not last:
            async with db.write() as s:
                await repo.set_cursor(s, tenant=tenant.id, name=name, value=now.isoformat())
            continue
        firing = due_firing(drop, last, now, tenant)
        if firing is None:
            continue
        queued += await _fire(db, tenant.id, drop, firing)
        async with db.write() as s:
            await repo.set_cursor(s, tenant=tenant.id, name=name, value=firing)
    return queued


async def _fire(db: Database, tenant: str, drop: DropSpec, firing: str) -> int:
    async with db.read() as s:
        rows = await repo.audience(s, tenant=tenant)
        tags = await repo.tag_names_by_customer(s, tenant=tenant)
    by_guide: dict[str, list[str]] = {}
    for guide, store, customer in rows:
        if drop.audience.admits(tags.get(customer, set()), store, guide):
            by_guide.setdefault(guide, []).append(customer)
    queued = 0
    async with db.write() as s:
        for guide, customers in sorted(by_guide.items()):
            for start in range(0, len(customers), MAX_RECIPIENTS):
                chunk = customers[start:start + MAX_RECIPIENTS]
                created = await repo.insert_task(
                    s, tenant=tenant, key=f"drop:{drop.id}:{firing}:{guide}:{start}",
                    kind=drop.channel, source=f"drop:{drop.id}", guide=guide,
                    message=drop.message, recipients=len(chunk), status="queued",
                    detail=json.dumps({"customers": chunk}))
                queued += created is not None
    log.info("drop %s tenant=%s firing %s: %s task(s)", drop.id, tenant, firing, queued)
    return queued
