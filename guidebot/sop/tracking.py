"""Confirmation tracking of 群发 tasks, and re-reminding guides (≤ 3 per 24 h per task)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from guidebot.db.engine import Database
from guidebot.db.models_sop import SopTask
from guidebot.db.repo import sop_tasks as repo
from guidebot.db.types import utcnow
from guidebot.errors import WeComError
from guidebot.wecom.client import WeComClient

log = logging.getLogger(__name__)

RECHECK = timedelta(hours=2)
REMINDERS_PER_DAY = 3  # remind_groupmsg_send limit (FACTS §3.5)
GIVE_UP_AFTER = timedelta(days=3)
SENT = 1  # get_groupmsg_task / send_result status 1 = 已发送 (FACTS §3.5)


class Tracker:
    def __init__(self, db: Database, client_for: Callable[[str], WeComClient], *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self._client_for = client_for
        self._clock = clock

    async def check(self, tenant: str, *, limit: int = 100) -> int:
        now = self._clock()
        async with self._db.write() as s:
            tasks = await repo.due_checks(s, tenant=tenant, now=now, limit=limit)
            for task in tasks:  # claimed: push the next look out before calling WeCom
                task.next_check_at = now + RECHECK
        for task in tasks:
            try:
                await self._check_one(tenant, task, now)
            except WeComError as exc:
                log.warning("confirmation check task=%s errcode=%s; retried later", task.id,
                            exc.errcode)
        return len(tasks)

    async def _check_one(self, tenant: str, task: SopTask, now: datetime) -> None:
        assert task.id is not None
        client = self._client_for(tenant)
        page = await client.call("POST", "externalcontact/get_groupmsg_task",
                                 json={"msgid": task.msgid, "limit": 1000})
        mine = [t for t in page.get("task_list", []) if t.get("userid") == task.guide]
        if mine and mine[0].get("status") == SENT:
            confirmed = await self._confirmed(client, task)
            async with self._db.write() as s:
                await repo.update_task(s, task_id=task.id, status="confirmed",
                                       confirmed=confirmed, next_check_at=None, now=now)
            return
        if now - task.created_at > GIVE_UP_AFTER:
            async with self._db.write() as s:
                await repo.update_task(s, task_id=task.id, next_check_at=None,
                                       last_error="never confirmed by the guide", now=now)
            return
        await self._remind(client, task, now)

    async def _confirmed(self, client: WeComClient, task: SopTask) -> int:
        result = await client.call("POST", "externalcontact/get_groupmsg_send_result",
                                   json={"msgid": task.msgid, "userid": task.guide,
                                         "limit": 1000})
        return sum(1 for r in result.get("send_list", []) if r.get("status") == SENT)

    async def _remind(self, client: WeComClient, task: SopTask, now: datetime) -> None:
        assert task.id is not None
        detail = json.loads(task.detail or "{}")
        recent = [t for t in detail.get("reminded", [])
                  if now - datetime.fromisoformat(t) < timedelta(hours=24)]
        if len(recent) >= REMINDERS_PER_DAY:
            return
        await client.call("POST", "externalcontact/remind_groupmsg_send",
                          json={"msgid": task.msgid})
        detail["reminded"] = [*recent, now.isoformat()]
        async with self._db.write() as s:
            await repo.update_task(s, task_id=task.id, reminders=task.reminders + 1,
                                   detail=json.dumps(detail), now=now)
        log.info("reminded guide of task %s (%s in 24 h)", task.id, len(recent) + 1)
