"""The dispatcher: due step rows → one task per guide and step (≤ 10,000) → the outbox."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from guidebot.db.engine import Database
from guidebot.db.repo import sop_plan as plan_repo
from guidebot.db.repo import sop_tasks as repo
from guidebot.db.types import utcnow
from guidebot.outbox import Outbox

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 10_000  # add_msg_template external_userid limit (FACTS §3.5)
BATCH_CHANNELS = ("guide_task", "reminder", "moment")
KINDS = {"guide_task": "sop_guide_task", "reminder": "sop_reminder", "moment": "sop_moment",
         "notify": "sop_notify"}


def outbox_key(task_id: int) -> str:
    return f"sop-task:{task_id}"


class Dispatcher:
    """Claims with FOR UPDATE SKIP LOCKED, so any number of processes may run it at once."""

    def __init__(self, db: Database, outbox: Outbox, *, claim_limit: int = 50_000,
                 groups: int = 200,
                 stale_after: timedelta = timedelta(minutes=2),
                 clock: Callable[[], datetime] = utcnow,
                 app_msg_per_min: Callable[[str], int] = lambda tenant: 30) -> None:
        self._db = db
        self._outbox = outbox
        self._claim_limit = claim_limit
        self._groups = groups
        self.stale_after = stale_after
        self._clock = clock
        self.app_msg_per_min = app_msg_per_min

    async def batch(self, tenant: str) -> int:
        """Group due planned steps into one task per (guide, SOP, version, step) of at most
        10,000 customers; returns how many steps were claimed."""
        now = self._clock()
        claimed = 0
        async with self._db.write() as s:
            groups = await plan_repo.due_groups(s, tenant=tenant, now=now,
                                                channels=BATCH_CHANNELS, limit=self._groups)
            for group in groups:
                while claimed < self._claim_limit:
                    ids = await plan_repo.claim_group(s, tenant=tenant, now=now, group=group,
                                                      limit=MAX_RECIPIENTS)
                    if not ids:
                        break
                    claimed += len(ids)
                    await self._task(s, tenant, group, ids, now)
        return claimed

    async def _task(self, s: Any, tenant: str, group: Any, ids: list[int],
                    now: datetime) -> None:
        task_id = await repo.insert_task(
            s, tenant=tenant, key=f"sop:{group.sop_id}:v{group.version}:s{group.step_index}:"
            f"{min(ids)}", kind=group.channel, source=f"sop:{group.sop_id}",
            version=group.version, step_index=group.step_index, guide=group.guide,
            message=group.message, recipients=len(ids), status="queued", now=now)
        assert task_id is not None  # a step id is claimed only once
        await plan_repo.assign_steps(s, step_ids=ids, task_id=task_id)

    async def deliver(self, tenant: str, *, limit: int = 200) -> int:
        """Hand queued tasks (and ones a dead process left half-sent) to the outbox."""
        async with self._db.write() as s:
            now = self._clock()
            tasks = await repo.claim_tasks(s, tenant=tenant, status="queued", limit=limit,
                                           now=now)
            stale = await repo.claim_tasks(s, tenant=tenant, status="sending", limit=limit,
                                           older_than=now - self.stale_after, now=now)
        delivered = 0
        for task in [*tasks, *stale]:
            assert task.id is not None
            key = outbox_key(task.id)
            if task in stale:
                async with self._db.read() as s:
                    if await repo.outbox_exists(s, tenant=tenant, key=key):
                        continue  # the outbox owns it now: its retry takes over
            if task.kind in repo.APP_MESSAGE_KINDS and not await self._app_quota(task):
                continue
            outcome = await self._outbox.run(tenant=tenant, key=key, kind=KINDS[task.kind],
                                             payload={"task_id": task.id})
            delivered += outcome.status == "done"
        return delivered

    async def _app_quota(self, task: Any) -> bool:
        """≤ N app messages per guide per minute (FACTS §3.7: excess is silently dropped);
        over it, the task goes back to the queue for a later pass."""
        limit = self.app_msg_per_min(task.tenant)
        async with self._db.write() as s:
            sent = await repo.app_messages_since(s, tenant=task.tenant, guide=task.guide,
                                                 since=self._clock() - timedelta(minutes=1))
            if sent < limit:
                return True
            await repo.update_task(s, task_id=task.id, status="queued", now=self._clock())
        return False

    async def run(self, tenant: str) -> int:
        """One dispatcher pass: batch, then deliver until nothing is left to hand over."""
        claimed = await self.batch(tenant)
        while await self.deliver(tenant):
            pass
        return claimed
