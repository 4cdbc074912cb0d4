"""Just in time: due enrollments get their next step row, under the SOP's newest version.

A pass plans each distinct input (SOP, step, trigger, floor) once and applies it to every
enrollment sharing it in a few set-based statements; a step due at once is born in its guide
task. Enrollments whose 群发 step competes for the customer's quota (another active
enrollment, or the period's quota already used) take the per-row planner instead.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from guidebot.content import sop_planner as planner
from guidebot.db.engine import Database
from guidebot.db.repo import sop_bulk as bulk
from guidebot.db.repo import sop_plan as repo
from guidebot.settings import TenantSettings
from guidebot.sop import timing
from guidebot.sop.tasking import BATCH_CHANNELS, StepGroup, make_tasks
from guidebot.sop.versions import Current

log = logging.getLogger(__name__)

QUOTA_LOOKBACK = timedelta(days=32)  # longer than any natural quota period
PASS_LIMIT = 50_000  # enrollments per transaction (≈ 0.5 s): SQLite's writer is let go in between


@dataclass(frozen=True)
class Inputs:
    """What decides an enrollment's next move; equal inputs, equal plans."""

    sop_id: str
    next_step: int
    trigger_at: datetime
    floor: datetime  # last_at, or the trigger while no step was placed


def lock_key(tenant: str) -> int:
    return zlib.crc32(f"guidebot:sop-planner:{tenant}".encode())


async def materialise(db: Database, tenant: TenantSettings, currents: dict[str, Current],
                      now: datetime, *, limit: int = PASS_LIMIT) -> int:
    """Advance up to `limit` due enrollments; returns how many were claimed (0 when another
    process holds this tenant's planner)."""
    async with db.read() as s:  # most passes find nothing: no writer for them
        if not await bulk.any_due(s, tenant=tenant.id, now=now):
            return 0
    async with db.write() as s:
        if not await bulk.try_lock(s, key=lock_key(tenant.id)):
            return 0
        bound = await bulk.due_bound(s, tenant=tenant.id, now=now, limit=limit)
        claimed = await bulk.claim_enrollments(s, tenant=tenant.id, now=now, bound=bound)
        if not claimed:
            return 0
        inputs = [Inputs(*row) for row in await bulk.claimed_inputs(s)]
        plans = [plan_row(pid, key, currents.get(key.sop_id), tenant, now)
                 for pid, key in enumerate(inputs)]
        groups = _task_groups(plans)
        await bulk.load_plan(s, plans)
        contested = (await bulk.quota_contested(s, tenant=tenant.id,
                                                since=now - QUOTA_LOOKBACK)
                     if any(p["q_count"] is not None for p in plans) else [])
        await bulk.unclaim(s, ids=contested)
        tasks = (await make_tasks(s, tenant=tenant.id, groups=groups, claimed="e", now=now)
                 if groups else 0)
        steps = await bulk.insert_claimed_steps(s, tenant=tenant.id, now=now)
        await bulk.advance_claimed(s, plans=plans, now=now)
        if contested:
            await _one_by_one(s, tenant, currents, now, contested)
        await bulk.small_cache(s)
    log.debug("planned tenant=%s enrollments=%s inputs=%s steps=%s tasks=%s contested=%s",
              tenant.id, claimed, len(inputs), steps, tasks, len(contested))
    return claimed


def _task_groups(plans: list[dict[str, Any]]) -> dict[int, StepGroup]:
    """Plans due now that send the same step of the same version share a task group (so a
    guide's customers of one step share one task, whatever their trigger times)."""
    ids: dict[StepGroup, int] = {}
    for plan in plans:
        if plan["due_now"]:
            group = StepGroup(plan["sop_id"], plan["version"], plan["next_step"],
                              plan["channel"], plan["message"])
            plan["tgid"] = ids.setdefault(group, len(ids))
    return {gid: group for group, gid in ids.items()}


def plan_row(pid: int, key: Inputs, current: Current | None, tenant: TenantSettings,
             now: datetime) -> dict[str, Any]:
    """The plan for every enrollment with these inputs, as a row of the plan table."""
    row: dict[str, Any] = {
        "pid": pid, "sop_id": key.sop_id, "next_step": key.next_step,
        "trigger_at": key.trigger_at, "floor": key.floor, "action": "stop", "version": None,
        "channel": "", "message": "", "due_at": None, "step_status": "", "reason": "",
        "due_now": 0, "new_next_step": key.next_step, "new_last_at": None, "new_next_at": None,
        "new_status": "stopped", "new_reason": "sop disabled", "q_count": None,
        "q_start": None, "q_end": None, "q_key": None, "tgid": None}
    if current is None or not current.enabled:
        return row
    spec, index = current.spec, key.next_step
    at = timing.step_time(spec, index, key.trigger_at, key.floor, tenant)
    row.update(version=current.version, new_status="active", new_reason="")
    if at is None:
        return {**row, "action": "complete", "version": None, "new_status": "completed"}
    if at > now:  # an edit moved the step later: wait for it
        return {**row, "action": "wait", "new_next_at": at}
    step = spec.steps[index]
    if step.channel == "welcome":
        placed: planner.Placement = planner.Placement(None, "a welcome goes only with an add")
    else:  # the quota as if unused; quota_contested sends the others to the per-row planner
        placed = timing.place_step(spec, index, timing.start_from(spec, at, now, tenant), [],
                                   tenant)
    last = placed.at or key.floor
    following = timing.step_time(spec, index + 1, key.trigger_at, last, tenant)
    row.update(action="step", channel=step.channel, message=step.message,
               due_at=placed.at or at, reason=placed.reason,
               step_status="planned" if placed.at is not None else "skipped",
               new_next_step=index + 1, new_last_at=placed.at, new_next_at=following,
               new_status="active" if following else "completed")
    if placed.at is not None:
        row["due_now"] = int(placed.at <= now and step.channel in BATCH_CHANNELS)
        quota = timing.quota_of(tenant)
        if step.channel in planner.QUOTA_CHANNELS:
            row.update(q_count=quota.count, q_key=quota_key(placed.at, quota, tenant))
    return row


def quota_key(at: datetime, quota: planner.Quota, tenant: TenantSettings) -> str:
    """The natural quota period of `at`, as kept on an enrollment ("day:2026-11-20")."""
    return f"{quota.period}:" + "-".join(
        str(n) for n in planner.period_key(at, quota.period, tenant.tz))


async def _one_by_one(s: Any, tenant: TenantSettings, currents: dict[str, Current],
                      now: datetime, ids: list[int]) -> None:
    """The per-row planner, in due order, counting each placement against the customer."""
    due = await repo.enrollments_by_ids(s, ids=ids)
    customers = sorted({e.external_userid for e in due})
    taken = await repo.counted_times(s, tenant=tenant.id, customers=customers,
                                     since=now - QUOTA_LOOKBACK)
    steps: list[dict[str, Any]] = []
    updates = [_advance(e, currents.get(e.sop_id), tenant, now, taken, steps) for e in due]
    await repo.insert_steps(s, steps)
    await repo.update_enrollments(s, updates)


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
        placed = timing.place_step(spec, index, timing.start_from(spec, at, now, tenant),
                                   taken.get(e.external_userid, []), tenant)
        placed_at, reason = placed.at, placed.reason
        status = "planned" if placed_at is not None else "skipped"
    steps.append({"tenant": e.tenant, "enrollment_id": e.id, "sop_id": e.sop_id,
                  "version": current.version, "step_index": index, "cycle_no": e.cycle_no,
                  "channel": step.channel,
                  "message": step.message, "guide": e.guide,
                  "external_userid": e.external_userid, "due_at": placed_at or at,
                  "status": status, "reason": reason, "task_id": None, "created_at": now})
    own: dict[str, Any] = {}
    if placed_at is not None and step.channel in planner.QUOTA_CHANNELS:
        taken.setdefault(e.external_userid, []).append(placed_at)
        key = quota_key(placed_at, timing.quota_of(tenant), tenant)
        own = {"quota_period": key,
               "quota_used": e.quota_used + 1 if e.quota_period == key else 1}
    last = placed_at or e.last_at
    following = timing.step_time(spec, index + 1, e.trigger_at, last, tenant)
    return {"id": e.id, "version": current.version, "next_step": index + 1, "last_at": last,
            "next_at": following, "status": "active" if following else "completed",
            "updated_at": now, **own}
