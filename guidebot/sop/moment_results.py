"""Moment tasks: poll the add_moment_task job (FACTS §3.8) until done, record its outcome."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from guidebot.db.engine import Database
from guidebot.db.models_sop import SopTask
from guidebot.db.repo import sop_tasks as tasks_repo
from guidebot.db.repo import sop_tracking as repo
from guidebot.db.types import utcnow
from guidebot.sop.tracking import look_at_due
from guidebot.wecom.client import WeComClient

log = logging.getLogger(__name__)

DONE = 3  # job status 1 开始, 2 进行中, 3 完成 (FACTS §3.8)
# FACTS gives no duration for the job; it usually ends within seconds, so look again soon and
# give up (recording why) after a day.
RECHECK = timedelta(minutes=5)
GIVE_UP_AFTER = timedelta(days=1)


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
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self._client_for = client_for
        self._clock = clock

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
        async with self._db.write() as s:
            await tasks_repo.update_task(s, task_id=task.id, status=status, last_error=error,
                                         detail=json.dumps(detail, ensure_ascii=False),
                                         next_check_at=None, now=now)
        log.info("moment task %s: job done, status %s", task.id, status)
