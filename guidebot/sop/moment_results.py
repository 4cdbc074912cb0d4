"""Moment tasks: poll the add_moment_task job (FACTS §3.8) until done, record its outcome;
then, for a moment that sends a material, look until the guide published it (members publish
in the client) and only then record the material's use and its contributor's points."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from guidebot.content.sop_spec import MATERIAL_MESSAGE
from guidebot.db.engine import Database
from guidebot.db.models_sop import SopTask
from guidebot.db.repo import sop_tasks as tasks_repo
from guidebot.db.repo import sop_tracking as repo
from guidebot.db.types import utcnow
from guidebot.sop.tracking import look_at_due, pages
from guidebot.wecom.client import WeComClient

log = logging.getLogger(__name__)

DONE = 3  # job status 1 开始, 2 进行中, 3 完成 (FACTS §3.8)
# FACTS gives no duration for the job; it usually ends within seconds, so look again soon and
# give up (recording why) after a day.
RECHECK = timedelta(minutes=5)
GIVE_UP_AFTER = timedelta(days=1)
# Whether the guide published: get_moment_task (WeCom's doc "获取客户朋友圈企业发表的列表",
# task_list[{userid, publish_status 1 = 已发表}]; not in the fact sheet, so unconfirmed). A
# guide publishes when they choose: look every half hour for a week.
PUBLISHED = 1
PUBLISH_RECHECK = timedelta(minutes=30)
PUBLISH_GIVE_UP = timedelta(days=7)
Published = Callable[[str, SopTask], Awaitable[None]]


async def _nothing(tenant: str, task: SopTask) -> None:
    return None


def _listed(value: Any, key: str) -> list[str]:
    """invalid_sender_list / invalid_external_contact_list: FACTS names the fields but not
    their shape; WeCom's doc ([mem]) nests lists ({"user_list": [...]}); a bare list is read
    as that list."""
    if isinstance(value, dict):
        value = value.get(key)
    return [str(v) for v in value] if isinstance(value, list) else []


def outcome(task: SopTask, answer: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """(task status, last_error, detail["moment"]) for a finished job."""
    result = answer.get("result") or {}
    errcode = int(result.get("errcode") or 0)
    invalid_senders = _listed(result.get("invalid_sender_list"), "user_list")
    moment = {"job_status": DONE, "errcode": errcode,
              "moment_id": str(result.get("moment_id") or "") or None,
              "invalid_senders": invalid_senders,
              "invalid_tags": _listed(result.get("invalid_external_contact_list"),
                                      "tag_list")}
    if errcode:
        return "failed", f"moment job failed: errcode {errcode}", moment
    if task.guide in invalid_senders:
        return "failed", "the guide is not a valid sender (invalid_sender_list)", moment
    return "sent", "", moment


class MomentResults:
    def __init__(self, db: Database, client_for: Callable[[str], WeComClient], *,
                 clock: Callable[[], datetime] = utcnow,
                 published: Published = _nothing) -> None:
        self._db = db
        self._client_for = client_for
        self._clock = clock
        self._published = published  # the material's use, once the guide published

    async def check(self, tenant: str, *, limit: int = 100) -> int:
        """Look at every moment task whose job result is due; returns how many."""
        now = self._clock()
        return await look_at_due(
            self._db, lambda s: repo.due_for_tracking(s, tenant=tenant, kind="moment", now=now,
                                                      limit=limit),
            lambda task: self._look(tenant, task, now), next_look=now + RECHECK,
            what="moment job check")

    async def _look(self, tenant: str, task: SopTask, now: datetime) -> None:
        assert task.id is not None
        if json.loads(task.detail or "{}").get("moment", {}).get("job_status") == DONE:
            await self._look_published(tenant, task, now)
            return
        answer = await self._client_for(tenant).call(
            "GET", "externalcontact/get_moment_task_result", params={"jobid": task.msgid})
        detail = json.loads(task.detail or "{}")
        if answer.get("status") != DONE:
            # the first look's time, on the tracker's clock (the task's own stamps may not be)
            since = detail.get("moment", {}).get("polled_since") or now.isoformat()
            detail["moment"] = {"job_status": answer.get("status"), "polled_since": since}
            late = now - datetime.fromisoformat(since) > GIVE_UP_AFTER
            async with self._db.write() as s:
                await tasks_repo.update_task(
                    s, task_id=task.id, detail=json.dumps(detail, ensure_ascii=False), now=now,
                    **({"next_check_at": None, "last_error": "moment job not done after a day"}
                       if late else {}))
            return
        status, error, detail["moment"] = outcome(task, answer)
        watch = status == "sent" and task.message.startswith(MATERIAL_MESSAGE) \
            and bool(detail["moment"]["moment_id"])
        if watch:  # a material's moment: its use counts once the guide published it
            detail["moment"].update(published=False, done_at=now.isoformat())
        async with self._db.write() as s:
            await tasks_repo.update_task(s, task_id=task.id, status=status, last_error=error,
                                         detail=json.dumps(detail, ensure_ascii=False),
                                         next_check_at=now + PUBLISH_RECHECK if watch else None,
                                         now=now)
        log.info("moment task %s: job done, status %s", task.id, status)

    async def _look_published(self, tenant: str, task: SopTask, now: datetime) -> None:
        """Whether the guide published the moment: then the material's use is recorded (keyed
        by the task: a second look records nothing more) and the looks stop."""
        assert task.id is not None
        detail = json.loads(task.detail or "{}")
        moment = detail["moment"]
        published = False
        async for item in pages(self._client_for(tenant), "externalcontact/get_moment_task",
                                {"moment_id": moment["moment_id"]}, "task_list"):
            if item.get("userid") == task.guide and item.get("publish_status") == PUBLISHED:
                published = True
        changes: dict[str, Any] = {"next_check_at": now + PUBLISH_RECHECK}
        if published:
            await self._published(tenant, task)
            moment.update(published=True, published_seen_at=now.isoformat())
            changes = {"next_check_at": None}
        elif now - datetime.fromisoformat(moment.get("done_at") or now.isoformat()) \
                > PUBLISH_GIVE_UP:
            changes = {"next_check_at": None,
                       "last_error": "the guide did not publish the moment within 7 days"}
        async with self._db.write() as s:
            await tasks_repo.update_task(s, task_id=task.id,
                                         detail=json.dumps(detail, ensure_ascii=False),
                                         now=now, **changes)
        log.info("moment task %s: published=%s", task.id, published)
