"""The WeCom calls behind SOP tasks, run by the outbox under the task's key (at most once)."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.contacts.tags import TagService
from guidebot.contacts.welcome import to_wecom_attachment
from guidebot.content.library import Library, Message
from guidebot.content.render import render
from guidebot.db.engine import Database
from guidebot.db.models_sop import SopTask
from guidebot.db.repo import contacts as contacts_repo
from guidebot.db.repo import sop_plan as plan_repo
from guidebot.db.repo import sop_tasks as repo
from guidebot.db.types import utcnow
from guidebot.errors import ValidationFailed
from guidebot.outbox import Done, Executor, Outbox, is_retry
from guidebot.settings import Settings
from guidebot.sop import reconcile
from guidebot.sop.spec import SopSpec, sop_from_json
from guidebot.wecom.client import WeComClient

log = logging.getLogger(__name__)

CHECK_AFTER = timedelta(minutes=30)  # first look at a 群发 task's confirmation
TITLE_BYTES, DESCRIPTION_BYTES = 128, 512  # textcard limits (FACTS §3.7)
NOTIFY_MESSAGE = "sop_notify_guide"
NAMES_LISTED = 10
GUIDE_CACHE = timedelta(minutes=1)


def _cut(text: str, limit: int) -> str:
    return text.encode()[:limit].decode(errors="ignore")


class SopExecutors:
    def __init__(self, settings: Settings, db: Database, library: Library,
                 client_for: Callable[[str], WeComClient],
                 clock: Callable[[], datetime] = utcnow,
                 tags: TagService | None = None, outbox: Outbox | None = None) -> None:
        self._tags = tags
        self._outbox = outbox
        self._clock = clock
        self._settings = settings
        self._db = db
        self._library = library
        self._client_for = client_for
        self._guides: dict[tuple[str, str], tuple[datetime, tuple[str, str]]] = {}
        self._steps: dict[tuple[str, str, int], SopSpec | None] = {}

    def executors(self) -> dict[str, Executor]:
        return {"sop_guide_task": self.guide_task, "sop_reminder": self.reminder,
                "sop_moment": self.moment, "sop_notify": self.notify}

    async def _load(self, payload: Mapping[str, Any]) -> tuple[SopTask, list[str]] | None:
        async with self._db.read() as s:
            task = await repo.get_task(s, task_id=int(payload["task_id"]))
            if task is None or task.status in ("sent", "confirmed", "cancelled"):
                return None
            customers = await plan_repo.task_customers(s, task_id=int(payload["task_id"]))
        if task.source.startswith("drop:"):  # drops name their audience in the task itself
            return task, sorted(json.loads(task.detail or "{}").get("customers", []))
        return task, customers

    async def _open(self, payload: Mapping[str, Any]
                    ) -> tuple[SopTask, list[str]] | dict[str, Any]:
        """The task and its remaining customers, or the answer when there is nothing to send."""
        loaded = await self._load(payload)
        if loaded is None:
            return {"already": True}
        task, customers = loaded
        if not customers:
            return await self._cancel(task)
        return task, customers

    async def _values(self, task: SopTask, count: int, names: list[str]) -> dict[str, Any]:
        guide, store = await self._guide(task.tenant, task.guide)
        return {"guide": {"name": guide, "userid": task.guide}, "store": {"name": store},
                "task": {"title": self._title(task), "count": str(count),
                         "customers": "、".join(names[:NAMES_LISTED])}}

    async def _guide(self, tenant: str, userid: str) -> tuple[str, str]:
        """The guide's and their store's names, remembered for a minute (a pass sends many
        tasks per guide; a renamed guide shows in the next minute's texts)."""
        now = self._clock()
        cached = self._guides.get((tenant, userid))
        if cached is not None and now - cached[0] < GUIDE_CACHE:
            return cached[1]
        async with self._db.read() as s:
            guide = await contacts_repo.get_guide(s, tenant=tenant, userid=userid)
            store = (await contacts_repo.get_store(s, tenant=tenant, store_id=guide.store_id)
                     if guide and guide.store_id else None)
        names = (guide.name if guide else "", store.name if store else "")
        self._guides[(tenant, userid)] = (now, names)
        return names

    def _title(self, task: SopTask) -> str:
        kind, _, ident = task.source.partition(":")
        specs: Mapping[str, Any] = self._library.sops if kind == "sop" else self._library.drops
        spec = specs.get(ident)
        return spec.title if spec is not None else ident

    def _message(self, message_id: str) -> Message:
        return self._library.messages[message_id]

    async def _cancel(self, task: SopTask) -> dict[str, Any]:
        assert task.id is not None
        async with self._db.write() as s:
            await repo.update_task(s, task_id=task.id, status="cancelled",
                                   last_error="every customer exited before sending",
                                   now=self._clock())
        return {"cancelled": True}

    async def guide_task(self, tenant: str, payload: dict[str, Any]) -> dict[str, Any] | Done:
        opened = await self._open(payload)
        if isinstance(opened, dict):
            return opened
        task, customers = opened
        message = self._message(task.message)
        values = await self._values(task, len(customers), [])
        text = render(message.text, values) if message.text else ""
        body: dict[str, Any] = {"chat_type": "single", "sender": task.guide,
                                "external_userid": customers}
        if text:
            body["text"] = {"content": text}
        appid = self._settings.tenant(tenant).miniprogram_appid
        if message.attachments:
            body["attachments"] = [to_wecom_attachment(a, appid) for a in message.attachments]
        client = self._client_for(tenant)
        # calling_at is stamped when the task is claimed, before any call can happen
        found = (await reconcile.find_template(client, task, text, customers)
                 if is_retry() and task.calling_at is not None else None)
        if found is None:
            result = await client.add_msg_template(body)
            msgid, failed = str(result.get("msgid", "")), list(result.get("fail_list") or [])
        else:
            msgid, failed = found, []
        await self._mark_tags(tenant, task, [c for c in customers if c not in set(failed)])
        return Done({"msgid": msgid, "fail_list": failed},
                    functools.partial(self._sent, task=task, msgid=msgid, customers=customers,
                                      failed=failed))

    async def _mark_tags(self, tenant: str, task: SopTask, customers: list[str]) -> None:
        """A step's add_tags / remove_tags, once per customer (each its own outbox row)."""
        if self._tags is None or self._outbox is None or not task.source.startswith("sop:"):
            return
        spec = await self._version(tenant, task.source[4:], task.version)
        if spec is None:
            return
        step = spec.steps[task.step_index]
        if not step.add_tags and not step.remove_tags:
            return
        try:
            add = await self._tags.resolve(tenant, list(step.add_tags))
            remove = await self._tags.resolve(tenant, list(step.remove_tags))
        except ValidationFailed as exc:
            log.warning("task %s: step tags not applied: %s", task.id, exc)
            return
        for customer in customers:
            await self._outbox.run(
                tenant=tenant, key=f"sop-tags:{task.id}:{customer}"[:160], kind="mark_tag",
                payload={"userid": task.guide, "external_userid": customer, "add_tag": add,
                         "remove_tag": remove})

    async def _version(self, tenant: str, sop_id: str, version: int) -> SopSpec | None:
        """A recorded SOP version (immutable, so remembered)."""
        key = (tenant, sop_id, version)
        if key not in self._steps:
            async with self._db.read() as s:
                row = await plan_repo.get_version(s, tenant=tenant, sop_id=sop_id,
                                                  version=version)
            self._steps[key] = sop_from_json(row.spec) if row is not None else None
        return self._steps[key]

    async def _sent(self, s: AsyncSession, *, task: SopTask, msgid: str, customers: list[str],
                    failed: list[str]) -> None:
        """The task is sent (in the outbox's done transaction); a 群发 task's guide is told."""
        assert task.id is not None
        now = self._clock()
        if failed:  # the others stay queued: a sent task means its queued steps were sent
            await plan_repo.set_task_steps(s, task_id=task.id, status="failed",
                                           reason="not this guide's customer (fail_list)",
                                           customers=failed)
        await repo.update_task(s, task_id=task.id, status="sent", msgid=msgid,
                               recipients=len(customers) - len(failed),
                               next_check_at=now + CHECK_AFTER, now=now)
        if task.kind == "guide_task" and NOTIFY_MESSAGE in self._library.messages:
            await repo.insert_task(s, tenant=task.tenant, key=f"notify:{task.id}",
                                   kind="notify", source=task.source, version=task.version,
                                   step_index=task.step_index, guide=task.guide,
                                   message=NOTIFY_MESSAGE,
                                   recipients=len(customers) - len(failed),
                                   status="queued", detail=json.dumps({"task": task.id}),
                                   now=now)

    async def reminder(self, tenant: str, payload: dict[str, Any]) -> dict[str, Any] | Done:
        """An SOP `reminder` step: an app message to the guide naming the customers."""
        opened = await self._open(payload)
        if isinstance(opened, dict):
            return opened
        task, customers = opened
        names = await self._names(tenant, customers)
        result = await self._app_card(tenant, task, len(customers), names)
        await self._mark_tags(tenant, task, customers)
        msgid = str(result.get("msgid", ""))
        return Done({"msgid": msgid}, functools.partial(self._sent, task=task, msgid=msgid,
                                                        customers=customers, failed=[]))

    async def notify(self, tenant: str, payload: dict[str, Any]) -> dict[str, Any] | Done:
        """Tell the guide a 群发 task waits for confirmation."""
        async with self._db.read() as s:
            task = await repo.get_task(s, task_id=int(payload["task_id"]))
        if task is None or task.status == "sent":
            return {"already": True}
        result = await self._app_card(tenant, task, task.recipients, [])
        assert task.id is not None
        msgid = str(result.get("msgid", ""))
        return Done({"msgid": msgid}, functools.partial(
            repo.update_task, task_id=task.id, status="sent", msgid=msgid, now=self._clock()))

    async def _names(self, tenant: str, customers: list[str]) -> list[str]:
        async with self._db.read() as s:
            found = await repo.customer_names(s, tenant=tenant,
                                              external_userids=customers[:NAMES_LISTED])
        return [found.get(c) or c for c in customers[:NAMES_LISTED] if c in found]

    async def _app_card(self, tenant: str, task: SopTask, count: int,
                        names: list[str]) -> dict[str, Any]:
        """A textcard to the guide. WeCom's duplicate check (FACTS §3.7) keeps a retry after a
        crash mid-call from showing twice."""
        values = await self._values(task, count, names)
        message = self._message(task.message)
        body = {"touser": task.guide, "msgtype": "textcard", "enable_duplicate_check": 1,
                "duplicate_check_interval": 1800, "textcard": {
                    "title": _cut(self._title(task), TITLE_BYTES),
                    "description": _cut(render(message.text, values), DESCRIPTION_BYTES),
                    "url": f"{self._settings.server.public_url}/console/"}}
        result = await self._client_for(tenant).send_app_message(body)
        if task.guide in str(result.get("invaliduser", "")).split("|"):
            log.warning("reminder task=%s: guide is not a valid member", task.id)
        return result

    async def moment(self, tenant: str, payload: dict[str, Any]) -> dict[str, Any] | Done:
        """An SOP `moment` step: a 朋友圈 task the guide publishes to all their customers."""
        opened = await self._open(payload)
        if isinstance(opened, dict):
            return opened
        task, customers = opened
        message = self._message(task.message)
        values = await self._values(task, len(customers), [])
        body: dict[str, Any] = {"visible_range": {"sender_list": {"user_list": [task.guide]}}}
        if message.text:
            body["text"] = {"content": render(message.text, values)}
        links = [to_wecom_attachment(a, "") for a in message.attachments
                 if a["type"] in ("image", "link")]
        if links:
            body["attachments"] = links
        result = await self._client_for(tenant).call("POST", "externalcontact/add_moment_task",
                                                     json=body)
        jobid = str(result.get("jobid", ""))
        return Done({"jobid": jobid}, functools.partial(self._sent, task=task, msgid=jobid,
                                                        customers=customers, failed=[]))
