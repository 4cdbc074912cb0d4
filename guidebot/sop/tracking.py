"""Confirmation tracking of 群发 tasks, re-reminding guides (≤ 3 per 24 h per task), and the
results of moment jobs."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

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
PAGE = 1000  # get_groupmsg_task / get_groupmsg_send_result: limit ≤ 1000 (FACTS §3.5)


async def look_at_due(db: Database, claim: Callable[[AsyncSession], Awaitable[list[SopTask]]],
                      look: Callable[[SopTask], Awaitable[None]], *, next_look: datetime,
                      what: str) -> int:
    """Claim due tasks, push their next look out (so no other pass takes them meanwhile),
    then look at each; a WeCom error leaves that task for its next look."""
    async with db.write() as s:
        tasks = await claim(s)
        for task in tasks:
            task.next_check_at = next_look
    for task in tasks:
        try:
            await look(task)
        except WeComError as exc:
            log.warning("%s task=%s errcode=%s; retried later", what, task.id, exc.errcode)
    return len(tasks)


async def pages(client: WeComClient, path: str, body: dict[str, Any],
                key: str) -> AsyncIterator[dict[str, Any]]:
    """Every item of a cursor-paged POST API, page after page until next_cursor is empty."""
    cursor, seen = "", set()
    while True:
        page = await client.call("POST", path, json={**body, "limit": PAGE, "cursor": cursor})
        for item in page.get(key) or []:
            yield item
        cursor = str(page.get("next_cursor") or "")
        if not cursor or cursor in seen:  # a repeated cursor would loop for ever
            return
        seen.add(cursor)


async def guide_sent(client: WeComClient, msgid: str, guide: str) -> bool:
    """Whether the guide sent their part of the 群发 `msgid` (get_groupmsg_task)."""
    async for item in pages(client, "externalcontact/get_groupmsg_task", {"msgid": msgid},
                            "task_list"):
        if item.get("userid") == guide:
            return bool(item.get("status") == SENT)
    return False


Stop = Callable[[str, SopTask], Awaitable[None]]


async def _no_stop(tenant: str, task: SopTask) -> None:
    raise NotImplementedError("this tracker cannot cancel a stopped task")


class Tracker:
    def __init__(self, db: Database, client_for: Callable[[str], WeComClient], *,
                 clock: Callable[[], datetime] = utcnow, stop: Stop = _no_stop) -> None:
        self._db = db
        self._client_for = client_for
        self._clock = clock
        self._stop = stop

    async def check(self, tenant: str, *, limit: int = 100) -> int:
        """Confirmations of due 群发 tasks, and reminders; returns how many were looked at."""
        now = self._clock()
        return await look_at_due(
            self._db, lambda s: repo.due_checks(s, tenant=tenant, now=now, limit=limit),
            lambda task: self._check_one(tenant, task, now), next_look=now + RECHECK,
            what="confirmation check")

    async def check_tasks(self, tenant: str, ids: Sequence[int]) -> int:
        """`check` for these tasks now (HQ stopped them: each is confirmed if its guide sent
        it already, else cancelled in WeCom)."""
        now = self._clock()
        return await look_at_due(
            self._db, lambda s: repo.sent_mass_tasks(s, tenant=tenant, ids=ids),
            lambda task: self._check_one(tenant, task, now), next_look=now + RECHECK,
            what="stop")

    async def _check_one(self, tenant: str, task: SopTask, now: datetime) -> None:
        assert task.id is not None
        client = self._client_for(tenant)
        if await guide_sent(client, task.msgid, task.guide):
            confirmed = await self._confirmed(client, task)
            async with self._db.write() as s:
                await repo.update_task(s, task_id=task.id, status="confirmed",
                                       confirmed=confirmed, next_check_at=None, now=now)
            return
        if task.stopped_at is not None:  # HQ stopped it and the guide has not sent it
            await self._stop(tenant, task)
            return
        if now - task.created_at > GIVE_UP_AFTER:
            async with self._db.write() as s:
                await repo.update_task(s, task_id=task.id, next_check_at=None,
                                       last_error="never confirmed by the guide", now=now)
            return
        await self._remind(client, task, now)

    async def _confirmed(self, client: WeComClient, task: SopTask) -> int:
        """Recipients the message reached (customers, or a group task's groups), over every
        page of the send result."""
        reached = 0
        async for item in pages(client, "externalcontact/get_groupmsg_send_result",
                                {"msgid": task.msgid, "userid": task.guide}, "send_list"):
            reached += item.get("status") == SENT
        return reached

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
