"""The WeCom calls behind SOP tasks, run by the outbox under the task's key (at most once).

The dispatcher loads a batch of claimed tasks at once (`load`) and hands each one's call to
the outbox (`call`); a retry from the outbox loads its one task (the registered executors).
A call returns `Done` with its bookkeeping as deferred writes, recorded with the outbox row.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from guidebot.app_quota import AppQuota
from guidebot.contacts.tags import TagService
from guidebot.contacts.welcome import Pictures, Tracker, card_token, to_wecom_attachment
from guidebot.content.library import MOMENT_ATTACHMENTS, Library, Message
from guidebot.content.render import render
from guidebot.content.sop_spec import MATERIAL_MESSAGE, SopSpec, sop_from_json
from guidebot.db.engine import Database
from guidebot.db.models_sop import SopTask
from guidebot.db.repo import contacts as contacts_repo
from guidebot.db.repo import groups as groups_repo
from guidebot.db.repo import sop_plan as plan_repo
from guidebot.db.repo import sop_tasks as repo
from guidebot.db.types import utcnow
from guidebot.db.writes import Write
from guidebot.errors import ValidationFailed
from guidebot.outbox import Done, Executor, is_retry
from guidebot.settings import Settings
from guidebot.sop import guide_links, reconcile, tracking
from guidebot.wecom.client import WeComClient

log = logging.getLogger(__name__)

CHECK_AFTER = timedelta(minutes=30)  # first look at a 群发 task's confirmation
TITLE_BYTES, DESCRIPTION_BYTES = 128, 512  # textcard limits (FACTS §3.7)
NOTIFY_MESSAGE = "sop_notify_guide"
NOTIFY_GROUP_MESSAGE = "sop_notify_group_owner"  # a group 群发 task waits for its owner
NAMES_LISTED = 10
GUIDE_CACHE = timedelta(minutes=1)
FINISHED = ("sent", "confirmed", "cancelled")
WITH_CUSTOMERS = ("guide_task", "reminder", "moment", "group_task")  # a group step: chat ids
MASS_KINDS = ("guide_task", "group_task")  # 群发 tasks the guide confirms in the client
CANCEL_KIND = "sop_cancel"  # the outbox kind of cancel_groupmsg_send for a stopped task


def stopped_writes(task_id: int, now: datetime) -> list[Write]:
    """What a stopped task that sent nothing records: the task cancelled, an SOP task's
    queued steps cancelled, a drop task's customers' sends forgotten. Either way its
    customers are freed from their quota: it counts steps planned, queued or sent and the
    drop sends recorded (sop_plan.counted_times, quota_used_between). An enrollment's own
    counter (quota_period, quota_used) is left as it was, so it may count more than the rows
    do. No placement reads it: it only routes planning (sop_bulk.quota_contested), and a
    counter at the quota sends the enrollment's next 群发 step in that period to the per-row
    planner, which counts the rows without the stopped step (test_sop_stop: the next step
    goes out the same day). It never counts fewer than the rows, which is what the set-based
    path relies on."""
    return [repo.mark_stopped(task_id=task_id, now=now),
            plan_repo.cancel_task_steps(task_id=task_id, reason=repo.STOPPED),
            plan_repo.forget_task_drop_sends(task_id=task_id)]


def _cut(text: str, limit: int) -> str:
    return text.encode()[:limit].decode(errors="ignore")


class SentMaterial(Protocol):
    """A stored material as a task sends it: its text and WeCom attachments."""

    @property
    def text(self) -> str: ...

    @property
    def attachments(self) -> tuple[dict[str, Any], ...]: ...


class TaskMaterials(Protocol):
    """The material centre, as SOP tasks and drops use it (guidebot/materials/)."""

    async def for_task(self, tenant: str, material_id: str, guide: str, *,
                       moment: bool = False) -> SentMaterial | str: ...

    async def task_used(self, tenant: str, material_id: str, *, guide: str, channel: str,
                        key: str, token: str, customers: Sequence[str] = ()) -> bool: ...

    async def find_text(self, tenant: str, material_id: str) -> str: ...


@dataclass(frozen=True)
class Loaded:
    """A claimed task with what its call needs: its remaining customers (a group task: its
    groups' chat ids), for a reminder the names of the first few."""

    task: SopTask
    customers: list[str]
    names: list[str]


class SopExecutors:
    def __init__(self, settings: Settings, db: Database, library: Library,
                 client_for: Callable[[str], WeComClient], *, tags: TagService,
                 cards: Tracker, pictures: Pictures, materials: TaskMaterials,
                 quota: AppQuota, clock: Callable[[], datetime] = utcnow) -> None:
        self._tags = tags
        self._quota = quota
        self._materials = materials
        self._cards = cards
        self._pictures = pictures
        self._clock = clock
        self._settings = settings
        self._db = db
        self._library = library
        self._client_for = client_for
        self._guides: dict[tuple[str, str], tuple[datetime, tuple[str, str]]] = {}
        self._steps: dict[tuple[str, str, int], SopSpec | None] = {}

    def executors(self) -> dict[str, Executor]:
        """For the outbox's retries: each loads its one task, then calls."""
        return {**{f"sop_{kind}": self._one for kind in ("guide_task", "reminder", "moment",
                                                         "notify", "group_task")},
                CANCEL_KIND: self.cancel_sent}

    async def _one(self, tenant: str, payload: dict[str, Any]) -> dict[str, Any] | Done:
        loaded = (await self.load(tenant, [int(payload["task_id"])])).get(int(payload["task_id"]))
        return await self.call(tenant, loaded)

    async def load(self, tenant: str, task_ids: Sequence[int]) -> dict[int, Loaded]:
        """The tasks, their customers and guides' names, in one read session."""
        async with self._db.read() as s:
            tasks = await repo.tasks_by_id(s, ids=task_ids)
            open_ids = [i for i, t in tasks.items()
                        if t.status not in FINISHED and t.kind in WITH_CUSTOMERS
                        and not t.source.startswith("drop:")]
            customers = await plan_repo.customers_of_tasks(s, task_ids=open_ids)
            for task in tasks.values():
                if task.source.startswith("drop:"):  # drops name their audience in the task
                    named = "groups" if task.kind == "group_task" else "customers"
                    customers[task.id or 0] = sorted(
                        json.loads(task.detail or "{}").get(named, []))
            listed = {c for i, t in tasks.items() if t.kind == "reminder"
                      for c in customers.get(i, [])[:NAMES_LISTED]}
            names = (await repo.customer_names(s, tenant=tenant, external_userids=sorted(listed))
                     if listed else {})
            await self._remember_guides(s, tenant, {t.guide for t in tasks.values()})
        return {i: Loaded(t, customers.get(i, []),
                          [names.get(c) or c for c in customers.get(i, [])[:NAMES_LISTED]
                           if c in names])
                for i, t in tasks.items()}

    async def call(self, tenant: str, loaded: Loaded | None) -> dict[str, Any] | Done:
        """The task's WeCom call; nothing when it is gone or finished, a cancellation when
        every customer left before it was sent."""
        if loaded is None or loaded.task.status in FINISHED:
            return {"already": True}
        if loaded.task.stopped_at is not None:  # HQ stopped its 群发 before it was sent
            if (is_retry() and loaded.task.kind in MASS_KINDS
                    and loaded.task.calling_at is not None):
                return await self._stopped_after_crash(tenant, loaded)
            return self._stopped(loaded.task)
        if loaded.task.kind == "notify":
            return await self._notify(tenant, loaded.task)
        if not loaded.customers:
            return self._cancel(loaded.task)
        run = {"guide_task": self._guide_task, "reminder": self._reminder,
               "moment": self._moment, "group_task": self._group_task}[loaded.task.kind]
        return await run(tenant, loaded)

    async def page(self, tenant: str, task_id: int) -> dict[str, Any] | None:
        """What a guide's task card opens (None: no such task of this tenant). A 群发
        notification shows the 群发 task it is about: its text as sent, its customers (or
        groups) count and whether the guide confirmed it; a reminder its text and the
        customers it names; a group task the groups' names."""
        async with self._db.read() as s:
            task = (await repo.tasks_by_id(s, ids=[task_id])).get(task_id)
            if task is None or task.tenant != tenant:
                return None
            subject = task
            if task.kind == "notify":
                about = json.loads(task.detail or "{}").get("task")
                found = (await repo.tasks_by_id(s, ids=[int(about)])).get(int(about)) \
                    if about else None
                subject = found if found is not None and found.tenant == tenant else task
            names: list[str] = []
            groups: list[str] = []
            if subject.kind == "reminder":
                ids = (await plan_repo.customers_of_tasks(s, task_ids=[task_id])).get(task_id, [])
                known = await repo.customer_names(s, tenant=tenant, external_userids=ids)
                names = [known.get(c) or c for c in ids]
            elif subject.kind == "group_task":
                chats = json.loads(subject.detail or "{}").get("groups", [])
                titled = await groups_repo.names(s, tenant=tenant, chat_ids=chats)
                groups = [titled.get(c) or c for c in chats]
            await self._remember_guides(s, tenant, {subject.guide})
        message = self._library.messages.get(subject.message)
        values = self._values(subject, subject.recipients, names)
        text = render(message.text, values) if message and message.text else ""
        if message is None and subject.message.startswith(MATERIAL_MESSAGE):
            text = await self._materials.find_text(
                tenant, subject.message.removeprefix(MATERIAL_MESSAGE))
        return {"kind": subject.kind, "title": self._title(subject), "status": subject.status,
                "recipients": subject.recipients, "confirmed": subject.confirmed,
                "guide": values["guide"]["name"] or subject.guide,
                "text": text,
                "cards": [str(a.get("title", "")) for a in (message.attachments if message
                                                             else ())
                          if a["type"] in ("miniprogram", "link")],
                "customers": names, "groups": groups,
                "stopped": subject.stopped_at is not None}

    async def _remember_guides(self, s: Any, tenant: str, userids: set[str]) -> None:
        """Guides' and their stores' names, remembered for a minute (a pass sends many tasks
        per guide; a renamed guide shows in the next minute's texts)."""
        now = self._clock()
        wanted = sorted(u for u in userids if (cached := self._guides.get((tenant, u))) is None
                        or now - cached[0] >= GUIDE_CACHE)
        if wanted:
            for userid, names in (await contacts_repo.guide_names(s, tenant=tenant,
                                                                  userids=wanted)).items():
                self._guides[(tenant, userid)] = (now, names)

    def _values(self, task: SopTask, count: int, names: list[str]) -> dict[str, Any]:
        cached = self._guides.get((task.tenant, task.guide))
        guide, store = cached[1] if cached else ("", "")
        return {"guide": {"name": guide, "userid": task.guide}, "store": {"name": store},
                "task": {"title": self._title(task), "count": str(count),
                         "customers": "、".join(names[:NAMES_LISTED])}}

    def _title(self, task: SopTask) -> str:
        kind, _, ident = task.source.partition(":")
        specs: Mapping[str, Any] = self._library.sops if kind == "sop" else self._library.drops
        spec = specs.get(ident)
        return spec.title if spec is not None else ident

    def _message(self, message_id: str) -> Message:
        return self._library.messages[message_id]

    def _fail(self, task: SopTask, reason: str) -> Done:
        """Nothing sent: the task fails with `reason` (shown with the task)."""
        assert task.id is not None
        log.warning("task %s tenant=%s failed: %s", task.id, task.tenant, reason)
        return Done({"failed": reason}, [repo.mark_failed(task_id=task.id, reason=reason,
                                                          now=self._clock())])

    async def _stored(self, tenant: str, task: SopTask) -> SentMaterial | str:
        """A material the library does not hold, looked up in the material centre now (a
        file may name a guide's material; it must exist and be approved when sent; a moment's
        must be fit for a moment). On a retry a material withdrawn since the first attempt
        fails the task too."""
        return await self._materials.for_task(
            tenant, task.message.removeprefix(MATERIAL_MESSAGE), task.guide,
            moment=task.kind == "moment")

    async def moment_published(self, tenant: str, task: SopTask) -> None:
        """The guide published a moment task's moment: a material it sent counts one use now
        (the contributor's points with it), not when the task was made."""
        await self._used(tenant, task, [])

    async def _used(self, tenant: str, task: SopTask, attachments: Sequence[dict[str, Any]],
                    customers: Sequence[str] = ()) -> None:
        """A task that sent a material records one use of it (keyed by the task, so a retry
        records nothing more) with the `customers` it reached; its contributor earns points
        when the guide is someone else."""
        if not task.message.startswith(MATERIAL_MESSAGE):
            return
        await self._materials.task_used(
            tenant, task.message.removeprefix(MATERIAL_MESSAGE), guide=task.guide,
            channel="drop" if task.source.startswith("drop:") else "sop",
            key=f"sop-task:{task.id}", token=card_token(attachments), customers=customers)

    def _stopped(self, task: SopTask) -> Done:
        """HQ stopped the task before its call: nothing is sent, and its customers do not
        count it against their quota."""
        assert task.id is not None
        log.info("task %s tenant=%s stopped before sending", task.id, task.tenant)
        return Done({"stopped": True}, stopped_writes(task.id, self._clock()))

    async def _stopped_after_crash(self, tenant: str, loaded: Loaded) -> Done:
        """HQ stopped a 群发 task whose earlier call may have reached WeCom (the process died
        mid-call): the template WeCom may hold is looked for as a retry of the call would
        (reconcile). One its guide has not sent is cancelled there (cancel_groupmsg_send, as
        a stop of a sent task does); one the guide sent is recorded sent, looked at at once
        by the tracker (which confirms it); none found: nothing was sent."""
        task = loaded.task
        assert task.id is not None
        text = await self._text(tenant, task, len(loaded.customers))
        if text is None:  # a material withdrawn since: its text is not known any more
            log.warning("task %s tenant=%s stopped after a crash: text unknown, not looked "
                        "for in WeCom", task.id, tenant)
            return self._stopped(task)
        client = self._client_for(tenant)
        found = await reconcile.find_template(
            client, task, text, loaded.customers,
            chat_type="group" if task.kind == "group_task" else "single")
        if found is None:
            return self._stopped(task)
        if await tracking.guide_sent(client, found, task.guide):
            now = self._clock()
            log.info("task %s tenant=%s stopped after a crash: its guide sent it", task.id,
                     tenant)
            return Done({"msgid": found, "stopped": True}, [repo.mark_sent(
                task_id=task.id, msgid=found, recipients=len(loaded.customers), check_at=now,
                now=now)])
        log.info("task %s tenant=%s stopped after a crash: cancelling it in WeCom", task.id,
                 tenant)
        return await self.cancel_sent(tenant, {"msgid": found, "task_id": task.id})

    async def _text(self, tenant: str, task: SopTask, count: int) -> str | None:
        """The text a 群发 task sends (None: a stored material that cannot be sent now)."""
        message = self._library.messages.get(task.message)
        if message is not None:
            return self._rendered(task, message, count)
        stored = await self._stored(tenant, task)
        return None if isinstance(stored, str) else stored.text

    def _rendered(self, task: SopTask, message: Message, count: int) -> str:
        return render(message.text, self._values(task, count, [])) if message.text else ""

    async def cancel_sent(self, tenant: str, payload: dict[str, Any]) -> Done:
        """The outbox executor of kind "sop_cancel": a stopped 群发 task WeCom holds is
        cancelled with cancel_groupmsg_send {msgid} (FACTS §3.5: the members who have not
        sent it yet cannot send it any more; what WeCom answers for a member who already
        sent it is not in the facts, so the tracker reads the task's state first and only
        cancels one its guide has not sent)."""
        await self._client_for(tenant).call("POST", "externalcontact/cancel_groupmsg_send",
                                            json={"msgid": payload["msgid"]})
        return Done({"cancelled": payload["msgid"]},
                    stopped_writes(int(payload["task_id"]), self._clock()))

    def _cancel(self, task: SopTask) -> Done:
        assert task.id is not None
        return Done({"cancelled": True}, [repo.mark_cancelled(
            task_id=task.id, reason="every customer exited before sending", now=self._clock())])

    async def _guide_task(self, tenant: str, loaded: Loaded) -> Done:
        """A 群发 to the guide's customers (≤ 10,000), confirmed by the guide in the client."""
        return await self._mass(tenant, loaded, {
            "chat_type": "single", "sender": loaded.task.guide,
            "external_userid": loaded.customers})

    async def _group_task(self, tenant: str, loaded: Loaded) -> Done:
        """A group_task drop: a 群发 to the owner's customer groups (chat_type "group",
        ≤ 2,000 chat ids), confirmed by the owner in the client (FACTS-next §C.5)."""
        return await self._mass(tenant, loaded, {
            "chat_type": "group", "sender": loaded.task.guide,
            "chat_id_list": loaded.customers})

    async def _mass(self, tenant: str, loaded: Loaded, body: dict[str, Any]) -> Done:
        """add_msg_template with the task's text and attachments; after a crash mid-call the
        template WeCom may already hold is adopted instead of sending twice. `fail_list`
        names the recipients (customers, or for a group task chat ids) it will not reach."""
        task, recipients = loaded.task, loaded.customers
        to_groups = task.kind == "group_task"
        message = self._library.messages.get(task.message)
        if message is None:  # a stored material (validation lets only those through)
            stored = await self._stored(tenant, task)
            if isinstance(stored, str):
                return self._fail(task, stored)
            text, sent = stored.text, list(stored.attachments)
        else:
            text = self._rendered(task, message, len(recipients))
            appid = self._settings.tenant(tenant).miniprogram_appid
            # a picture that fails to upload fails the try: retried
            sent = [to_wecom_attachment(a, appid) for a in await self._uploaded(
                tenant, await self._tracked(tenant, task, message))] \
                if message.attachments else []
        if text:
            body["text"] = {"content": text}
        if sent:
            body["attachments"] = sent
        client = self._client_for(tenant)
        # calling_at is stamped when the task is claimed, before any call can happen
        found = (await reconcile.find_template(client, task, text, recipients,
                                               chat_type=body["chat_type"])
                 if is_retry() and task.calling_at is not None else None)
        if found is None:
            result = await client.add_msg_template(body)
            msgid, failed = str(result.get("msgid", "")), list(result.get("fail_list") or [])
        else:
            msgid, failed = found, []
        reached = [c for c in recipients if c not in set(failed)]
        if not to_groups:
            await self._mark_tags(tenant, task, reached)
        if reached:  # the task reached someone (a group task's reach is not in customers)
            await self._used(tenant, task, sent, [] if to_groups else reached)
        return Done({"msgid": msgid, "fail_list": failed},
                    self._sent(task, msgid, recipients, failed))

    async def _tracked(self, tenant: str, task: SopTask,
                       message: Message) -> list[dict[str, Any]]:
        """Mini-program cards with a sku carry this guide's tracking token for this step
        (campaign "sop:<id>:<step>" or "drop:<id>"); a page that cannot take one is sent
        untracked."""
        attachments = [dict(a) for a in message.attachments]
        campaign = (f"{task.source}:{task.step_index}" if task.source.startswith("sop:")
                    else task.source)
        if task.message.startswith(MATERIAL_MESSAGE):  # an HQ material: its cards count for it
            campaign = task.message
        try:
            return await self._cards(tenant, task.guide, attachments, campaign)
        except ValidationFailed as exc:
            log.warning("task %s: card left untracked: %s", task.id, exc)
            return attachments

    async def _uploaded(self, tenant: str,
                        attachments: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return await self._pictures(tenant, attachments)

    async def _mark_tags(self, tenant: str, task: SopTask, customers: list[str]) -> None:
        """A step's add_tags / remove_tags, once per customer (each its own outbox row)."""
        if not task.source.startswith("sop:"):
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
            await self._tags.mark(tenant, key=f"sop-tags:{task.id}:{customer}",
                                  guide=task.guide, external_userid=customer, add=add,
                                  remove=remove)

    async def _version(self, tenant: str, sop_id: str, version: int) -> SopSpec | None:
        """A recorded SOP version (immutable, so remembered)."""
        key = (tenant, sop_id, version)
        if key not in self._steps:
            async with self._db.read() as s:
                row = await plan_repo.get_version(s, tenant=tenant, sop_id=sop_id,
                                                  version=version)
            self._steps[key] = sop_from_json(row.spec) if row is not None else None
        return self._steps[key]

    def _sent(self, task: SopTask, msgid: str, customers: list[str],
              failed: list[str]) -> list[Write]:
        """The task is sent; a 群发 task's guide is told. Its queued steps stay queued: a sent
        task means they were sent (see sop_plan.effective_status)."""
        assert task.id is not None
        now = self._clock()
        reached = len(customers) - len(failed)
        why = ("not this owner's group (fail_list)" if task.kind == "group_task"
               else "not this guide's customer (fail_list)")
        writes = [plan_repo.fail_step(task_id=task.id, external_userid=c, reason=why)
                  for c in failed]
        writes.append(repo.mark_sent(task_id=task.id, msgid=msgid, recipients=reached,
                                     check_at=now + CHECK_AFTER, now=now))
        notice = NOTIFY_GROUP_MESSAGE if task.kind == "group_task" else NOTIFY_MESSAGE
        if task.kind in MASS_KINDS and notice in self._library.messages:
            writes.append(repo.new_task(
                now=now, tenant=task.tenant, key=f"notify:{task.id}", kind="notify",
                source=task.source, version=task.version, step_index=task.step_index,
                guide=task.guide, message=notice, recipients=reached,
                detail=json.dumps({"task": task.id})))
        return writes

    async def _reminder(self, tenant: str, loaded: Loaded) -> Done:
        """An SOP `reminder` step: an app message to the guide naming the customers. A stored
        material is checked now (missing or withdrawn: the task fails, nothing is sent) and
        its text is the card's; a material's reminder is one use of it."""
        task, customers = loaded.task, loaded.customers
        text = None
        if task.message not in self._library.messages:
            stored = await self._stored(tenant, task)
            if isinstance(stored, str):
                return self._fail(task, stored)
            text = stored.text or self._title(task)
        result = await self._app_card(tenant, task, len(customers), loaded.names, text)
        await self._mark_tags(tenant, task, customers)
        await self._used(tenant, task, [])
        msgid = str(result.get("msgid", ""))
        return Done({"msgid": msgid}, self._sent(task, msgid, customers, []))

    async def _notify(self, tenant: str, task: SopTask) -> Done:
        """Tell the guide a 群发 task waits for confirmation."""
        assert task.id is not None
        result = await self._app_card(tenant, task, task.recipients, [])
        msgid = str(result.get("msgid", ""))
        return Done({"msgid": msgid}, [repo.mark_sent(
            task_id=task.id, msgid=msgid, recipients=task.recipients, check_at=None,
            now=self._clock())])

    async def _app_card(self, tenant: str, task: SopTask, count: int, names: list[str],
                        text: str | None = None) -> dict[str, Any]:
        """A textcard to the guide: the library message rendered, or `text` as it is (a
        stored material's). WeCom's duplicate check (FACTS §3.7) keeps a retry after a crash
        mid-call from showing twice. The dispatcher took the guide's app message slot for a
        first attempt; a retry takes one of its own (none free: `Postponed`, guidebot/
        app_quota.py)."""
        if text is None:
            text = render(self._message(task.message).text, self._values(task, count, names))
        body = {"touser": task.guide, "msgtype": "textcard", "enable_duplicate_check": 1,
                "duplicate_check_interval": 1800, "textcard": {
                    "title": _cut(self._title(task), TITLE_BYTES),
                    "description": _cut(text, DESCRIPTION_BYTES),
                    "url": guide_links.task_url(self._settings.server.public_url,
                                                self._settings.tenant(tenant), task.id or 0)}}
        if is_retry():
            await self._quota.hold(tenant, body)
        result = await self._client_for(tenant).send_app_message(body)
        if task.guide in str(result.get("invaliduser", "")).split("|"):
            log.warning("reminder task=%s: guide is not a valid member", task.id)
        return result

    async def _moment(self, tenant: str, loaded: Loaded) -> Done:
        """An SOP `moment` step: a 朋友圈 task the guide publishes to all their customers
        (library files with a mini-program card are refused when the library loads)."""
        task, customers = loaded.task, loaded.customers
        message = self._library.messages.get(task.message)
        body: dict[str, Any] = {"visible_range": {"sender_list": {"user_list": [task.guide]}}}
        if message is None:  # a stored material: its text and pictures, video or link
            stored = await self._stored(tenant, task)
            if isinstance(stored, str):
                return self._fail(task, stored)
            text, links = stored.text, list(stored.attachments)
        else:
            text = (render(message.text, self._values(task, len(customers), []))
                    if message.text else "")
            links = [to_wecom_attachment(a, "") for a in await self._uploaded(
                tenant, [dict(a) for a in message.attachments
                         if a["type"] in MOMENT_ATTACHMENTS])]
        if text:
            body["text"] = {"content": text}
        if links:
            body["attachments"] = links
        result = await self._client_for(tenant).call("POST", "externalcontact/add_moment_task",
                                                     json=body)
        jobid = str(result.get("jobid", ""))  # a material's use counts once published
        return Done({"jobid": jobid}, self._sent(task, jobid, customers, []))
