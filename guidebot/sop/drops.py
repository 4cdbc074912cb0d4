"""Content drops: on a cron or at a time, one guide task (or moment) per guide in the audience,
or for a group_task drop one 群发 to customer groups per group owner."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.content import sop_planner as planner
from guidebot.content.sop_cron import next_fire, parse_cron
from guidebot.content.sop_spec import GROUP_CHANNEL, DropSpec
from guidebot.db.engine import Database
from guidebot.db.repo import audiences as audiences_repo
from guidebot.db.repo import groups as groups_repo
from guidebot.db.repo import sop_plan
from guidebot.db.repo import sop_tasks as repo
from guidebot.db.types import utcnow
from guidebot.errors import NotFound
from guidebot.settings import TenantSettings
from guidebot.sop import timing
from guidebot.sop.audiences import audience_filter, once_for
from guidebot.sop.tasking import MAX_GROUPS, MAX_RECIPIENTS

log = logging.getLogger(__name__)

LATE_LIMIT = timedelta(days=1)
AUDIENCE_PAGE = 5000  # relations of a drop's audience fetched at once

# May this drop fire now? Asked in the transaction that makes the firing's tasks (a drop HQ
# cancelled, or fired by hand meanwhile, answers False and nothing is made).
Guard = Callable[[AsyncSession, DropSpec], Awaitable[bool]]
Claim = Callable[[AsyncSession], Awaitable[bool]]


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
                    clock: Callable[[], datetime] = utcnow, guard: Guard | None = None) -> int:
    """Fire due drops (call under the singleton lock); returns how many tasks were queued. A
    firing is claimed (its cursor set) in the transaction that makes its tasks, after
    `guard` let the drop fire."""
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
        queued += await _fire_any(db, tenant, drop, firing, now,
                                  _claim(tenant, drop, name, firing, guard))
    return queued


def _claim(tenant: TenantSettings, drop: DropSpec, name: str, firing: str,
           guard: Guard | None) -> Claim:
    async def claim(s: AsyncSession) -> bool:
        if guard is not None and not await guard(s, drop):
            log.info("drop %s tenant=%s firing %s: not fired (cancelled or fired meanwhile)",
                     drop.id, tenant.id, firing)
            return False
        await repo.set_cursor(s, tenant=tenant.id, name=name, value=firing)
        return True

    return claim


async def fire_now(db: Database, tenant: TenantSettings, drop: DropSpec, *, key: str = "",
                   clock: Callable[[], datetime] = utcnow) -> tuple[str, int, bool]:
    """HQ sends a drop now, whatever its schedule (a disabled drop too: a one-off template).
    Its tasks are made like a scheduled firing's, under the firing "manual:<digest of the
    key>" (a key given twice makes its tasks once) or of the time now; short, so the tasks'
    keys stay within their column. Returns (firing, tasks queued, whether the key had fired
    this drop before: a replay, nothing made now)."""
    now = clock()
    seed = f"key:{key}" if key else f"at:{now.isoformat()}"
    firing = f"manual:{hashlib.sha256(seed.encode()).hexdigest()[:16]}"
    if key:
        async with db.read() as s:
            if await repo.firing_made(s, tenant=tenant.id, drop_id=drop.id, firing=firing):
                log.info("drop %s tenant=%s firing %s: fired before (the same key), nothing "
                         "more made", drop.id, tenant.id, firing)
                return firing, 0, True
    return firing, await _fire_any(db, tenant, drop, firing, now), False


async def fire_at(db: Database, tenant: TenantSettings, drop: DropSpec, firing: str, *,
                  clock: Callable[[], datetime] = utcnow) -> int:
    """The drop's tasks under this firing now (a drop created to be sent at once makes its
    scheduled firing so): tasks queued."""
    return await _fire_any(db, tenant, drop, firing, clock())


async def _fire_any(db: Database, tenant: TenantSettings, drop: DropSpec, firing: str,
                    now: datetime, claim: Claim | None = None) -> int:
    """The firing's tasks: to customers, or for a group_task drop to groups; with `claim`,
    made only when it claims the firing in their transaction."""
    fire = _fire_groups if drop.channel == GROUP_CHANNEL else _fire
    return await fire(db, tenant, drop, firing, now, claim)


async def _fire(db: Database, tenant: TenantSettings, drop: DropSpec, firing: str,
                now: datetime, claim: Claim | None) -> int:
    """One task per guide (in chunks of MAX_RECIPIENTS). A 群发 drop reaches each customer
    once, through one guide (audiences_repo.Once: the exclusive guide, else the relation
    begun last, among the relations the audience admits); their other relations are left
    out, counted as "duplicates". It leaves out the customers whose per-customer quota for
    the current period is used (WeCom would not deliver to them), counted as "over_quota",
    and its customers count against that quota for SOP steps, once each. Both counts are
    recorded with the firing (群发记录 reads them there: a guide whose customers were all
    left out has no task) and, for each guide, in the detail of their first task."""
    once = drop.channel in planner.QUOTA_CHANNELS
    async with db.read() as s:
        full = await _quota_full(s, tenant, now) if once else set()
    by_guide: dict[str, list[str]] = {}
    left_out: dict[str, int] = {}
    duplicates: dict[str, int] = {}
    async for rows in _relations(db, tenant, drop, now, once=once):
        for guide, customer, via in rows:
            if via != guide:
                duplicates[via] = duplicates.get(via, 0) + 1
            elif customer in full:
                left_out[guide] = left_out.get(guide, 0) + 1
            else:
                by_guide.setdefault(guide, []).append(customer)
    queued = 0
    async with db.write() as s:
        if claim is not None and not await claim(s):
            return 0
        if once:
            await repo.record_firing(s, tenant=tenant.id, drop_id=drop.id, firing=firing,
                                     over_quota=sum(left_out.values()),
                                     duplicates=sum(duplicates.values()))
        for guide, customers in sorted(by_guide.items()):
            for start in range(0, len(customers), MAX_RECIPIENTS):
                chunk = customers[start:start + MAX_RECIPIENTS]
                detail: dict[str, object] = {"customers": chunk}
                if start == 0:
                    detail.update((k, n[guide]) for k, n in (
                        ("over_quota", left_out), ("duplicates", duplicates)) if n.get(guide))
                created = await repo.insert_task(
                    s, tenant=tenant.id, key=f"drop:{drop.id}:{firing}:{guide}:{start}",
                    kind=drop.channel, source=f"drop:{drop.id}", guide=guide,
                    message=drop.message, recipients=len(chunk), status="queued",
                    detail=json.dumps(detail))
                if created is not None and once:
                    await sop_plan.record_drop_sends(s, tenant=tenant.id, task_id=created,
                                                     customers=chunk, at=now)
                queued += created is not None
    log.info("drop %s tenant=%s firing %s: %s task(s), %s customer(s) left out on quota, "
             "%s relation(s) of customers reached through another guide", drop.id, tenant.id,
             firing, queued, sum(left_out.values()), sum(duplicates.values()))
    return queued


async def _relations(db: Database, tenant: TenantSettings, drop: DropSpec, now: datetime, *,
                     once: bool) -> AsyncIterator[list[tuple[str, str, str]]]:
    """The (guide, customer, via) relations the drop's audience admits, a part at a time in
    (guide, customer) order, filtered in SQL in one read (one snapshot of the audience); with
    `once`, `via` is the guide each customer is reached through (else the guide itself). A
    segment as it matches now, and a segment deleted since the drop was made reaches no
    one."""
    try:
        wanted = await audience_filter(db, tenant, drop.audience, now)
    except NotFound:
        log.warning("drop %s tenant=%s: segment %s no longer exists; no one receives it",
                    drop.id, tenant.id, drop.audience.segment)
        return
    async with db.read() as s:
        async for rows in audiences_repo.admitted(
                s, tenant=tenant.id, audience=wanted, part=AUDIENCE_PAGE,
                once=once_for(tenant, now) if once else None):
            yield rows


async def _fire_groups(db: Database, tenant: TenantSettings, drop: DropSpec, firing: str,
                       now: datetime, claim: Claim | None) -> int:
    """One group 群发 task per owner of a group in the audience (≤ MAX_GROUPS groups each;
    WeCom asks the owner to confirm it in the client). Groups whose owner left are left out:
    only their new owner could send. WeCom's own limit on 群发 messages a group receives
    (said to be as many a month as the month has days; unconfirmed) is not counted here:
    the send result names a group that did not receive it."""
    async with db.read() as s:
        groups = await groups_repo.addressees(s, tenant=tenant.id)
    by_owner: dict[str, list[str]] = {}
    owner_left = 0
    for group in groups:
        if not drop.admits_group(group.name, group.owner_store, group.owner):
            continue
        if group.owner_active and group.owner:
            by_owner.setdefault(group.owner, []).append(group.chat_id)
        else:
            owner_left += 1
    queued = 0
    async with db.write() as s:
        if claim is not None and not await claim(s):
            return 0
        for owner, chats in sorted(by_owner.items()):
            for start in range(0, len(chats), MAX_GROUPS):
                chunk = chats[start:start + MAX_GROUPS]
                created = await repo.insert_task(
                    s, tenant=tenant.id, key=f"drop:{drop.id}:{firing}:{owner}:{start}",
                    kind=drop.channel, source=f"drop:{drop.id}", guide=owner,
                    message=drop.message, recipients=len(chunk), status="queued",
                    detail=json.dumps({"groups": chunk}))
                queued += created is not None
    log.info("drop %s tenant=%s firing %s: %s group task(s), %s group(s) left out (owner "
             "left)", drop.id, tenant.id, firing, queued, owner_left)
    return queued


async def _quota_full(session: AsyncSession, tenant: TenantSettings, now: datetime) -> set[str]:
    """Customers whose 群发 quota for the period holding `now` is used up."""
    quota = timing.quota_of(tenant)
    start = planner.period_start(now, quota.period, tenant.tz)
    end = planner.next_period_start(now, quota.period, tenant.tz)
    used = await sop_plan.quota_used_between(session, tenant=tenant.id, start=start, end=end)
    return {customer for customer, n in used.items() if n >= quota.count}
