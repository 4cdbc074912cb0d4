"""Just in time: due enrollments get their next step row, under the SOP's newest version."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from guidebot.db.engine import Database
from guidebot.db.repo import sop_plan as repo
from guidebot.settings import TenantSettings
from guidebot.sop import timing
from guidebot.sop.versions import Current

log = logging.getLogger(__name__)

QUOTA_LOOKBACK = timedelta(days=32)  # longer than any natural quota period


async def materialise(db: Database, tenant: TenantSettings, currents: dict[str, Current],
                      now: datetime, *, limit: int = 2000) -> int:
    """Claim up to `limit` due enrollments; returns how many were claimed."""
    async with db.write() as s:
        due = await repo.claim_due_enrollments(s, tenant=tenant.id, now=now, limit=limit)
        if not due:
            return 0
        customers = sorted({e.external_userid for e in due})
        taken = await repo.counted_times(s, tenant=tenant.id, customers=customers,
                                         since=now - QUOTA_LOOKBACK)
        steps: list[dict[str, Any]] = []
        updates = [_advance(e, currents.get(e.sop_id), tenant, now, taken, steps) for e in due]
        await repo.insert_steps(s, steps)
        await repo.update_enrollments(s, updates)
    log.debug("materialised tenant=%s enrollments=%s steps=%s", tenant.id, len(due), len(steps))
    return len(due)


def _advance(e: Any, current: Current | None, tenant: TenantSettings,
             now: datetime, taken: dict[str, list[datetime]],
             steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The enrollment's update; appends the step row it materialises, if any."""
    if current is None or not current.enabled:
        return {"id": e.id, "status": "stopped", "reason": "sop disabled", "next_at": None,
                "updated_at": now}
    spec, index = current.spec, e.next_step
    at = timing.step_time(spec, index, e.trigger_at, e.last_at, tenant)
    if at is None:
        return {"id": e.id, "status": "completed", "next_at": None, "updated_at": now}
    if at > now:  # an edit moved the step later: wait for it
        return {"id": e.id, "version": current.version, "next_at": at, "updated_at": now}
    step = spec.steps[index]
    if step.channel == "welcome":
        placed_at, status, reason = None, "skipped", "a welcome goes only with an add"
    else:
        placed = timing.place_step(spec, index, at, taken.get(e.external_userid, []), tenant)
        placed_at, reason = placed.at, placed.reason
        status = "planned" if placed_at is not None else "skipped"
    steps.append({"tenant": e.tenant, "enrollment_id": e.id, "sop_id": e.sop_id,
                  "version": current.version, "step_index": index, "channel": step.channel,
                  "message": step.message, "guide": e.guide,
                  "external_userid": e.external_userid, "due_at": placed_at or at,
                  "status": status, "reason": reason, "task_id": None, "created_at": now})
    if placed_at is not None and step.channel == "guide_task":
        taken.setdefault(e.external_userid, []).append(placed_at)
    last = placed_at or e.last_at
    following = timing.step_time(spec, index + 1, e.trigger_at, last, tenant)
    return {"id": e.id, "version": current.version, "next_step": index + 1, "last_at": last,
            "next_at": following, "status": "active" if following else "completed",
            "updated_at": now}
