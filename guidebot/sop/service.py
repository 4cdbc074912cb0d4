"""The SOP service: versions, enrollment, the dispatcher pass, singleton jobs, tracking."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.app_quota import AppQuota
from guidebot.content.library import Library
from guidebot.content.reload import library_is_newest
from guidebot.content.sop_spec import Audience, DropSpec
from guidebot.db.engine import Database
from guidebot.db.models_sop import SopTask
from guidebot.db.repo import contacts as contacts_repo
from guidebot.db.repo import opt_outs
from guidebot.db.repo import sop_console as console_repo
from guidebot.db.repo import sop_plan as plan_repo
from guidebot.db.repo import sop_tasks as tasks_repo
from guidebot.db.types import utcnow
from guidebot.db.writes import apply
from guidebot.errors import NotFound, Refusal, ValidationFailed
from guidebot.outbox import Outbox
from guidebot.segments.service import audience_segment
from guidebot.settings import Settings
from guidebot.sop import drops, scan, stopping, versions
from guidebot.sop.dispatcher import Dispatcher
from guidebot.sop.engine import SopEngine
from guidebot.sop.executors import CANCEL_KIND, MASS_KINDS, SopExecutors, stopped_writes
from guidebot.sop.materialise import PASS_LIMIT, materialise
from guidebot.sop.moment_results import MomentResults
from guidebot.sop.tenant_drops import Created, Draft, TenantDrops, drop_row
from guidebot.sop.tracking import Tracker
from guidebot.wecom.client import WeComClient

log = logging.getLogger(__name__)

VERSIONS_FRESH_S = 1.0
SENDS_READ = 20_000  # a drop's newest tasks read for its sends (200 guides × 100 firings)
FIRINGS_LISTED = 30
GROUP_SENDS_LISTED = 50


class SopClock:
    """'Now' for every part of the SOP machinery: the demo and tests move it by setting
    `SopService.clock`, and the executors built beside the service see the same time."""

    def __init__(self, now: Callable[[], datetime] = utcnow) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now()


class SopService:
    def __init__(self, settings: Settings, db: Database, library: Library,
                 client_for: Callable[[str], WeComClient], outbox: Outbox,
                 executors: SopExecutors, *, clock: SopClock, quota: AppQuota) -> None:
        self._settings = settings
        self._db = db
        self._library = library
        self._clock = clock
        self.engine = SopEngine(settings, db, self.ready, clock=lambda: self.clock())
        self._executors = executors
        self.dispatcher = Dispatcher(db, outbox, self._executors, clock=lambda: self.clock(),
                                     quota=quota)
        self._outbox = outbox
        self.tracker = Tracker(db, client_for, clock=lambda: self.clock(),
                               stop=self._cancel_in_wecom)
        self.moments = MomentResults(db, client_for, clock=lambda: self.clock(),
                                     published=executors.moment_published)
        self._synced: set[str] = set()
        self._syncing: dict[str, asyncio.Lock] = {}
        # The newest versions, read at most once a second per tenant: a burst's adds share
        # one read. Versions written by this process are seen at once (the memo is dropped);
        # those of another process within VERSIONS_FRESH_S.
        self._fresh: dict[str, tuple[float, dict[str, versions.Current]]] = {}
        self._reading: dict[str, asyncio.Task[dict[str, versions.Current]]] = {}
        self._generation = 0  # bumped when versions are forgotten
        # drops HQ created in the console or the admin API (新建群发)
        self.tenant_drops = TenantDrops(db, library, lambda: self.clock())

    @property
    def clock(self) -> Callable[[], datetime]:
        return self._clock

    @clock.setter
    def clock(self, now: Callable[[], datetime]) -> None:
        self._clock.now = now

    async def messages_in_use(self, messages: Sequence[str]) -> dict[str, str]:
        """Of these message ids, those a task or a planned step still has to send, each with
        how many (a content_library edit removing them waits: content/reload.py)."""
        async with self._db.read() as s:
            found = await plan_repo.messages_in_use(s, messages=messages)
        return {m: f"{tasks} task(s) not sent yet, {steps} step(s) planned"
                for m, (tasks, steps) in sorted(found.items())}

    async def guide_page(self, tenant: str, task_id: int) -> dict[str, Any] | None:
        """The page a guide's task card opens (see SopExecutors.page)."""
        return await self._executors.page(tenant, task_id)

    async def ready(self, tenant: str) -> dict[str, versions.Current]:
        """Record new versions of edited SOP files (once per process and per reload), then
        the newest ones."""
        if tenant not in self._synced:
            # Callers that arrive during a sync wait for it: none records the same versions
            # twice, and none reads (and keeps for VERSIONS_FRESH_S) those from before it.
            async with self._syncing.setdefault(tenant, asyncio.Lock()):
                if tenant not in self._synced and await library_is_newest(self._library):
                    self._fresh.pop(tenant, None)
                    found = await versions.sync(self._db, tenant, self._library.sops)
                    self._synced.add(tenant)
                    return found
        memo = self._fresh.get(tenant)
        if memo is not None and time.monotonic() - memo[0] < VERSIONS_FRESH_S:
            return memo[1]
        # One read per tenant at a time: when the memo runs out under a burst, the adds
        # waiting for it share the read instead of each making its own.
        reading = self._reading.get(tenant)
        if reading is None:
            reading = self._reading[tenant] = asyncio.create_task(self._read_current(tenant))
            reading.add_done_callback(
                lambda done: self._reading.pop(tenant) if self._reading.get(tenant) is done
                else None)
        return await asyncio.shield(reading)

    async def _read_current(self, tenant: str) -> dict[str, versions.Current]:
        generation = self._generation
        found = await versions.current(self._db, tenant)
        if generation == self._generation:  # not forgotten meanwhile (then it may be stale)
            self._fresh[tenant] = (time.monotonic(), found)
        return found

    def forget_versions(self, tenant: str) -> None:
        """A version was written (e.g. an SOP enabled or disabled): read them again."""
        self._fresh.pop(tenant, None)
        self._reading.pop(tenant, None)  # a read in flight may predate the write
        self._generation += 1

    async def enroll_one(self, tenant: str, sop_id: str, *, external_userid: str,
                         guide: str) -> tuple[int | None, bool]:
        """Manual enrolment of one customer of a guide, both of this tenant (else NotFound
        naming the field, and nothing written), who has not opted out (else ValidationFailed):
        (enrollment id, whether it is new)."""
        await self.check_one(tenant, external_userid=external_userid, guide=guide)
        return await self._enroll_checked(tenant, sop_id, external_userid=external_userid,
                                          guide=guide)

    async def enroll_list(self, tenant: str, sop_id: str, rows: Sequence[tuple[str, str]]
                          ) -> tuple[list[tuple[int, Refusal]], int]:
        """Manual enrolment of a list of (customer, guide) rows, all or none: each row is
        checked once, as enroll_one checks it (one read for the list). When any is refused
        nothing is enrolled, and the refusals come back with their row's number (from 1);
        else every row is enrolled as enroll_one enrolls it, without a second check:
        (refusals, how many enrollments are new)."""
        async with self._db.read() as s:
            refused = [(n, found) for n, (external_userid, guide) in enumerate(rows, 1)
                       if (found := await _refusal(s, tenant, external_userid, guide)) is not None]
        if refused:
            return refused, 0
        enrolled = 0
        for external_userid, guide in rows:
            _, created = await self._enroll_checked(tenant, sop_id,
                                                    external_userid=external_userid,
                                                    guide=guide)
            enrolled += created
        return [], enrolled

    async def _enroll_checked(self, tenant: str, sop_id: str, *, external_userid: str,
                              guide: str) -> tuple[int | None, bool]:
        """enroll_one once its customer and guide passed check_one."""
        await self.ready(tenant)
        with _about_sop():  # not new: the enrollment there was (engine.manual found it)
            return await self.engine.manual(tenant, sop_id, external_userid, guide)

    async def check_one(self, tenant: str, *, external_userid: str, guide: str) -> None:
        """What enroll_one checks of its customer and guide, read only."""
        async with self._db.read() as s:
            found = await _refusal(s, tenant, external_userid, guide)
        if found is not None:
            raise found

    async def enroll_audience(self, tenant: str, sop_id: str, audience: Audience) -> int:
        await self.ready(tenant)
        if audience.segment is not None:  # the field at fault is the segment, not the SOP
            await audience_segment(self._db, tenant, audience.segment)
        with _about_sop():
            return await self.engine.enroll_audience(tenant, sop_id, audience)

    async def switch(self, tenant: str, sop_id: str, *, on: bool, operator: str) -> bool:
        """HQ switches an SOP off (as a file's enabled = false: enrollments stop at their next
        step, no one new joins) or on again;
        returns whether it is enabled now (the file's own `enabled` still applies)."""
        currents = await self.ready(tenant)
        if sop_id not in currents:
            raise NotFound(f"sop_id: SOP {sop_id!r} not found", code="sop.unknown", sop_id=sop_id)
        async with self._db.write() as s:
            await console_repo.switch(s, tenant=tenant, sop_id=sop_id, on=on,
                                      operator=operator[:64], now=utcnow())
        self.forget_versions(tenant)  # this process sees the switch at once; others in 1 s
        log.info("sop %s tenant=%s switched %s", sop_id, tenant, "on" if on else "off")
        return (await self.ready(tenant))[sop_id].enabled

    async def conversion(self, tenant: str) -> dict[tuple[str, int], dict[str, int]]:
        """Per SOP step: sent, confirmed, clicks, orders and GMV (repo/sop_console.py)."""
        async with self._db.read() as s:
            return await console_repo.step_conversion(s, tenant=tenant)

    async def library_replaced(self) -> None:
        """The library was reloaded: record new versions for every tenant now, so an edit
        applies to every step not yet materialised."""
        self._synced.clear()
        self._fresh.clear()
        self._reading.clear()
        self._generation += 1
        for tenant in self._settings.tenants:
            await self.ready(tenant)

    async def plan(self, tenant: str, *, limit: int = PASS_LIMIT) -> int:
        """Materialise every due step; returns how many enrollments were advanced."""
        currents = await self.ready(tenant)
        settings = self._settings.tenant(tenant)
        total = 0
        while True:
            claimed = await materialise(self._db, settings, currents, self.clock(), limit=limit)
            total += claimed
            if claimed < limit:
                return total

    async def tick(self, tenant: str) -> int:
        """One interval-job pass: plan, batch and deliver what is due."""
        await self.plan(tenant)
        return await self.dispatcher.run(tenant)

    async def birthdays_set(self, tenant: str, birthdays: Mapping[str, tuple[int, int]]) -> int:
        """Birthdays (month, day by customer) just stored: those whose birthday SOPs' trigger
        day has come this round are enrolled now (guidebot/sop/scan.py)."""
        if not birthdays:
            return 0
        return await scan.birthdays_set(self.engine, self._settings.tenant(tenant),
                                        await self.ready(tenant), birthdays, self.clock())

    async def singletons(self, tenant: str) -> bool:
        """Scans (tags, deletions, the day's birthdays and lapsed customers) and drops: one
        process at a time (PostgreSQL advisory lock)."""
        currents = await self.ready(tenant)
        async with tasks_repo.singleton(self._db.engine, f"sop-singletons:{tenant}") as mine:
            if not mine:
                return False
            await scan.scan_tags(self._db, self.engine, tenant)
            await scan.scan_deletions(self._db, self.engine, tenant)
            await scan.scan_birthdays(self._db, self.engine, self._settings.tenant(tenant),
                                      currents, self.clock())
            await scan.scan_no_purchase(self._db, self.engine, self._settings.tenant(tenant),
                                        currents, self.clock())
            # the library's drops and the tenant's own (a library id wins: none is hq-<n>)
            live = {**await self.tenant_drops.live(tenant), **self._library.drops}
            await drops.run_drops(
                self._db, self._settings.tenant(tenant), live, clock=self.clock,
                guard=lambda s, drop: self.tenant_drops.may_fire(s, tenant, drop))
        return True

    async def create_drop(self, tenant: str, draft: Draft) -> Created:
        """新建群发: a one-off drop of this tenant, checked as a drop file is; at "now" it is
        sent at once."""
        return await self.tenant_drops.create(self._settings.tenant(tenant), draft)

    async def cancel_drop(self, tenant: str, drop_id: str) -> dict[str, Any]:
        return await self.tenant_drops.cancel(tenant, drop_id)

    async def drops_listed(self, tenant: str) -> list[dict[str, Any]]:
        """The content library's drops (by id) and the tenant's own (newest first), each with
        its source and state."""
        states = await self.tenant_drops.library_states(tenant)
        library = [{**drop_row(d), "source": "library", "state": states[d.id]}
                   for d in sorted(self._library.drops.values(), key=lambda d: d.id)]
        return library + await self.tenant_drops.listed(tenant)

    async def fire_drop(self, tenant: str, drop_id: str, *,
                        key: str = "") -> tuple[dict[str, Any], bool]:
        """A content drop sent now (HQ's 立即发送): ({drop, firing, tasks}, whether it was a
        replay: the key had fired this drop before, so nothing was made now and `tasks` is
        0). A drop created in the console that has not fired is sent now instead of at its
        time."""
        drop = await self.drop(tenant, drop_id)
        if drop_id not in self._library.drops:
            await self.tenant_drops.claim(tenant, drop_id)
        firing, queued, replayed = await drops.fire_now(
            self._db, self._settings.tenant(tenant), drop, key=key, clock=self.clock)
        log.info("drop %s tenant=%s fired by hand (%s): %s task(s)%s", drop_id, tenant, firing,
                 queued, " (a replay)" if replayed else "")
        return {"drop": drop_id, "firing": firing, "tasks": queued}, replayed

    async def drop(self, tenant: str, drop_id: str) -> DropSpec:
        """A drop of the content library, or one this tenant created (NotFound else)."""
        drop = self._library.drops.get(drop_id)
        if drop is None:
            found = await self.tenant_drops.spec(tenant, drop_id)
            drop = found[0] if found is not None else None
        if drop is None:
            raise NotFound(f"drop_id: no drop {drop_id!r} in content_library/drops",
                           code="drop.unknown", drop_id=drop_id)
        return drop

    async def drop_sends(self, tenant: str, drop_id: str) -> list[stopping.Firing]:
        """A drop's latest firings (群发记录), newest first, their tasks counted by state."""
        await self.drop(tenant, drop_id)
        async with self._db.read() as s:
            tasks = await tasks_repo.tasks_of_source(s, tenant=tenant, source=f"drop:{drop_id}",
                                                     limit=SENDS_READ)
            recorded = await tasks_repo.firings_of_drop(s, tenant=tenant, drop_id=drop_id,
                                                        limit=FIRINGS_LISTED)
        return stopping.firings(drop_id, tasks, recorded, limit=FIRINGS_LISTED)

    async def group_sends(self, tenant: str, chat_id: str) -> list[dict[str, Any]]:
        """The latest 群发 made for one customer group (a group SOP's steps and group_task
        drops), newest first: what, when, and how far it went."""
        async with self._db.read() as s:
            tasks = await tasks_repo.tasks_to_group(s, tenant=tenant, chat_id=chat_id,
                                                    limit=GROUP_SENDS_LISTED)
        out = []
        own: dict[str, str] = {}  # the titles of drops created in the console, when named
        if any(t.source.startswith("drop:") and t.source[5:] not in self._library.drops
               for t in tasks):
            own = {d["id"]: d["title"] for d in await self.tenant_drops.listed(tenant)}
        for task in tasks:
            origin, _, ident = task.source.partition(":")
            specs: Mapping[str, Any] = (self._library.sops if origin == "sop"
                                        else self._library.drops)
            spec = specs.get(ident)
            out.append({"id": task.id, "created_at": task.created_at, "origin": origin,
                        "ident": ident, "step": task.step_index + 1,
                        "title": spec.title if spec is not None else own.get(ident, ident),
                        "message": task.message, "status": task.status, "owner": task.guide,
                        "stopped": task.stopped_at is not None})
        return out

    async def stop_drop(self, tenant: str, drop_id: str,
                        firing: str) -> tuple[dict[str, Any], bool]:
        """停止群发: a firing's tasks not sent yet are cancelled, its 群发 tasks WeCom holds are
        cancelled there unless their guide sent them already (then they count as confirmed).
        Stopping a stopped firing again changes nothing, nor does stopping a recorded firing
        that made no task (every customer left out); a firing never made is not found.
        (What the stop did, counted; whether it changed anything.)"""
        await self.drop(tenant, drop_id)
        async with self._db.read() as s:
            tasks = [t for t in await tasks_repo.tasks_of_source(
                s, tenant=tenant, source=f"drop:{drop_id}", limit=SENDS_READ)
                if stopping.firing_of(drop_id, t.key) == firing]
            recorded = bool(tasks) or await tasks_repo.firing_recorded(
                s, tenant=tenant, drop_id=drop_id, firing=firing)
        if not recorded:
            raise NotFound(f"firing: drop {drop_id!r} has no firing {firing!r}",
                           code="drop.no_firing", drop_id=drop_id, firing=firing)
        counts, changed = await self._stop(tenant, tasks)
        return {"drop": drop_id, "firing": firing, **counts}, changed

    async def step_tasks(self, tenant: str, sop_id: str) -> dict[int, int]:
        """Per step index of the SOP: its tasks a stop would still change."""
        async with self._db.read() as s:
            tasks = await tasks_repo.tasks_of_source(s, tenant=tenant, source=f"sop:{sop_id}",
                                                     limit=SENDS_READ)
        open_by_step: dict[int, int] = {}
        for task in tasks:
            if stopping.stoppable(task):
                open_by_step[task.step_index] = open_by_step.get(task.step_index, 0) + 1
        return open_by_step

    async def stop_step(self, tenant: str, sop_id: str,
                        step: int) -> tuple[dict[str, Any], bool]:
        """停止群发 for one step of an SOP (`step` counts from 1, as the console shows it):
        its tasks of every version and day are stopped like a drop's firing; their queued
        steps are cancelled and the enrollments go on to their next steps. (What the stop
        did, counted; whether it changed anything: a step with nothing left to stop not.)"""
        currents = await self.ready(tenant)
        current = currents.get(sop_id)
        if current is None:
            raise NotFound(f"sop_id: SOP {sop_id!r} not found", code="sop.unknown",
                           sop_id=sop_id)
        if not 1 <= step <= len(current.spec.steps):
            raise ValidationFailed(f"step: SOP {sop_id!r} has steps 1 to "
                                   f"{len(current.spec.steps)}", code="sop.no_step",
                                   sop_id=sop_id, steps=len(current.spec.steps))
        async with self._db.read() as s:
            tasks = [t for t in await tasks_repo.tasks_of_source(
                s, tenant=tenant, source=f"sop:{sop_id}", limit=SENDS_READ)
                if t.step_index == step - 1]
        counts, changed = await self._stop(tenant, tasks)
        return {"sop": sop_id, "step": step, **counts}, changed

    async def _stop(self, tenant: str, tasks: list[SopTask]) -> tuple[dict[str, int], bool]:
        """Stop these tasks: those not sent yet are cancelled here (an SOP task's queued
        steps with them; their customers freed from their quota); those WeCom holds are
        looked at now (tracker.check_tasks: confirmed if their guide sent them, else
        cancelled in WeCom); their queued notices to the guide (群发 waiting for you) are
        cancelled too. What the stop did, counted, and whether it changed anything (none
        left to stop: every task sent, stopped before, or none at all; a stop that only
        cancelled a notice changed something)."""
        now = self.clock()
        async with self._db.write() as s:
            cancelled, flagged, notices = await tasks_repo.stop_tasks(
                s, tenant=tenant, ids=[t.id for t in tasks if stopping.stoppable(t) and t.id],
                now=now)
            await apply(s, [w for i in cancelled for w in stopped_writes(i, now)])
        await self.tracker.check_tasks(tenant, flagged)
        async with self._db.read() as s:
            after = await tasks_repo.tasks_by_id(s, ids=[t.id for t in tasks if t.id])
        stopped = [t for t in after.values() if t.stopped_at is not None]
        log.info("tenant=%s stop: %s task(s) before sending, %s flagged, %s notice(s) "
                 "cancelled", tenant, len(cancelled), len(flagged), notices)
        counts = {
            "not_sent": len(cancelled),
            "cancelled_in_wecom": sum(t.id in flagged and t.status == "cancelled"
                                      for t in stopped),
            "already_sent": sum(t.status == "confirmed" or (t.status == "sent"
                                                             and t.kind not in MASS_KINDS)
                                for t in after.values()),
            "pending": sum(t.status in ("sending", "sent") for t in stopped),
            "notices_cancelled": notices}
        return counts, bool(cancelled or flagged or notices)

    async def _cancel_in_wecom(self, tenant: str, task: SopTask) -> None:
        """A stopped 群发 task its guide has not sent: cancel_groupmsg_send through the
        outbox (once per task; a failure is retried by the outbox, whose success records the
        task as cancelled)."""
        assert task.id is not None
        outcome = await self._outbox.run(
            tenant=tenant, key=f"sop-cancel:{task.id}", kind=CANCEL_KIND,
            payload={"task_id": task.id, "msgid": task.msgid},
            call=self._executors.cancel_sent)
        log.info("stopped task %s tenant=%s cancel in WeCom: %s", task.id, tenant,
                 outcome.status)

    async def track(self, tenant: str) -> int:
        """群发 confirmations and reminders, then moment job results."""
        return await self.tracker.check(tenant) + await self.moments.check(tenant)


async def _refusal(s: AsyncSession, tenant: str, external_userid: str,
                   guide: str) -> Refusal | None:
    """Why a manual enrolment of this customer of this guide is refused, if it is: a customer
    or guide the tenant does not have (NotFound naming the field), a customer who opted out
    (ValidationFailed)."""
    if await contacts_repo.get_customer(s, tenant=tenant,
                                        external_userid=external_userid) is None:
        return NotFound(f"external_userid: no customer {external_userid} in this tenant",
                        code="customer.unknown", external_userid=external_userid)
    if await contacts_repo.get_guide(s, tenant=tenant, userid=guide) is None:
        return NotFound(f"guide: no guide {guide} in this tenant", code="guide.unknown",
                        guide=guide)
    if await opt_outs.opted_out(s, tenant=tenant, external_userid=external_userid):
        return ValidationFailed(f"external_userid: {external_userid} opted out of "
                                "messages; no SOP enrolls them",
                                code="customer.opted_out", external_userid=external_userid)
    return None


@contextmanager
def _about_sop() -> Iterator[None]:
    """The engine's refusals name the SOP: the field at fault is the path's sop_id."""
    try:
        yield
    except NotFound as exc:
        raise NotFound(f"sop_id: {exc}", code=exc.code, **exc.params) from None
    except ValidationFailed as exc:
        raise ValidationFailed(f"sop_id: {exc}", code=exc.code, **exc.params) from None
