"""The dispatcher: due planned steps → one task per guide and step (≤ 10,000) → the outbox."""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from guidebot.app_quota import AppQuota
from guidebot.db.engine import Database
from guidebot.db.repo import sop_bulk as bulk
from guidebot.db.repo import sop_tasks as repo
from guidebot.db.types import utcnow
from guidebot.outbox import Outbox, Prepared
from guidebot.sop.executors import SopExecutors
from guidebot.sop.tasking import BATCH_CHANNELS, StepGroup, make_tasks

log = logging.getLogger(__name__)

KINDS = {"guide_task": "sop_guide_task", "reminder": "sop_reminder", "moment": "sop_moment",
         "notify": "sop_notify", "group_task": "sop_group_task"}
IN_FLIGHT = 8  # tasks handed to WeCom at once: the calls overlap, SQLite writes still queue


def outbox_key(task_id: int) -> str:
    return f"sop-task:{task_id}"


class Dispatcher:
    """Claims with FOR UPDATE SKIP LOCKED, so any number of processes may run it at once."""

    def __init__(self, db: Database, outbox: Outbox, executors: SopExecutors, *,
                 claim_limit: int = 100_000,
                 stale_after: timedelta = timedelta(minutes=2),
                 clock: Callable[[], datetime] = utcnow, quota: AppQuota) -> None:
        self._db = db
        self._outbox = outbox
        self._executors = executors
        self._claim_limit = claim_limit
        self.stale_after = stale_after
        self._clock = clock
        self._quota = quota

    async def batch(self, tenant: str) -> int:
        """Group steps that were planned for later and are due now into tasks (a step due
        when it is planned is born in its task); returns how many steps were claimed."""
        now = self._clock()
        async with self._db.read() as s:  # most passes find nothing: no writer for them
            if not await bulk.due_step_groups(s, tenant=tenant, now=now,
                                              channels=BATCH_CHANNELS):
                return 0
        async with self._db.write() as s:
            found = await bulk.due_step_groups(s, tenant=tenant, now=now,
                                               channels=BATCH_CHANNELS)
            if not found:
                return 0
            groups = {gid: StepGroup(*row) for gid, row in enumerate(found)}
            claimed = await bulk.claim_planned_steps(
                s, tenant=tenant, now=now, limit=self._claim_limit,
                groups=[{"gid": gid, **g.__dict__} for gid, g in groups.items()])
            await make_tasks(s, tenant=tenant, groups=groups, claimed="s", now=now)
            await bulk.queue_claimed_steps(s)
            await bulk.small_cache(s)
        return claimed

    async def deliver(self, tenant: str, *, limit: int = 200) -> int:
        """Hand queued tasks (and ones a dead process left half-sent) to the outbox: claimed
        and registered in one transaction, loaded in one read, called a few at a time and
        recorded together; returns how many were done."""
        async with self._db.read() as s:  # most passes find nothing: no writer for them
            if not await repo.any_to_claim(s, tenant=tenant,
                                           stale_before=self._clock() - self.stale_after):
                return 0
        async with self._db.write() as s:
            now = self._clock()
            claimed = [*await repo.claim_tasks(s, tenant=tenant, status="queued", limit=limit,
                                               now=now)]
            stale = await repo.claim_tasks(s, tenant=tenant, status="sending", limit=limit,
                                           older_than=now - self.stale_after, now=now)
            if stale:  # a task with an outbox row is the outbox's: its retry takes over
                owned = await repo.outbox_keys(s, tenant=tenant,
                                               keys=[outbox_key(t.id) for t in stale])
                claimed += [t for t in stale if outbox_key(t.id) not in owned]
            guides = [t.guide for t in claimed if t.kind in repo.APP_MESSAGE_KINDS]
            taken = (await self._quota.taken(s, tenant=tenant, guides=guides, now=now)
                     if guides else Counter())
            waiting, ready = self._app_quota(tenant, claimed, taken)
            await self._quota.record(s, tenant=tenant, now=now, guides=[
                t.guide for t in ready if t.kind in repo.APP_MESSAGE_KINDS])
            await repo.requeue_tasks(s, ids=[t.id for t in waiting], now=now)
            items = await self._outbox.register_many(s, tenant=tenant, rows=[
                (outbox_key(t.id), KINDS[t.kind], {"task_id": t.id}) for t in ready])
        if not items:
            return 0
        loaded = await self._executors.load(tenant, [t.id for t in ready])
        outcomes = await self._outbox.attempt_many([
            Prepared(items[outbox_key(t.id)], tenant, KINDS[t.kind],
                     functools.partial(self._executors.call, tenant, loaded.get(t.id)))
            for t in ready if outbox_key(t.id) in items], in_flight=IN_FLIGHT)
        return sum(o.status == "done" for o in outcomes)

    def _app_quota(self, tenant: str, tasks: list[Any],
                   taken: Counter[str]) -> tuple[list[Any], list[Any]]:
        """≤ N app messages per guide per minute (FACTS §3.7: the excess is silently dropped),
        counting every app message to the guide (guidebot/app_quota.py: `taken`, read with
        the guides' budgets held): over it, a task goes back to the queue for a later pass."""
        limit = self._quota.limit(tenant)
        waiting: list[Any] = []
        ready: list[Any] = []
        for task in tasks:
            if task.kind in repo.APP_MESSAGE_KINDS:
                if taken[task.guide] >= limit:
                    waiting.append(task)
                    continue
                taken[task.guide] += 1
            ready.append(task)
        return waiting, ready

    async def run(self, tenant: str) -> int:
        """One dispatcher pass: batch, then deliver until nothing is left to hand over."""
        claimed = await self.batch(tenant)
        while await self.deliver(tenant):
            pass
        return claimed

