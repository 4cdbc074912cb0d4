"""店长周报: once a week, at `[tenants.<id>.alerts] manager_weekly` (a weekday and a time of
day in the tenant's time zone), each store manager gets one app message per store they
manage about the week before (Monday to Sunday, the tenant's days): new customers,
deletions by customers and the net; orders and GMV with the change against the week before
that; the store's three guides with the most GMV (with their new customers); the guides with
群发 tasks waiting for their confirmation now (five named, then how many in all); the month's
业绩目标 with completion up to that Sunday when set; and a link to the store in the mobile
workbench.

The figures are the workbench's store view over those ranges (the daily statistics, as the
console's stores and guides pages read them). Managers are the workbench's: the `department_
leader`s of the store's WeCom departments and stores.toml's `managers`; a manager the address
book says left gets nothing, nor does a stores.toml manager it does not know as a current
member (logged by userid, listed on the console's stores page).

Each message goes through the outbox under `weekly:<manager>:<store>:<week's Monday>`, so a
manager hears one per store and week whatever runs it: a second run, a restart, another
process (the run itself is one process at a time, and the finished week is recorded). A
week with no manager to send to (the address book not synced yet, no leader set) is not
finished: each scan within it tries again. A process that starts after the time sends that
week's report then; a past week's is never sent. Like every app message it draws from the
manager's app message budget."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import quote

from guidebot.alerts.once import OncePerPeriod, send_batch
from guidebot.app_quota import AppQuota, app_text
from guidebot.content.chat import ChatContent
from guidebot.db.engine import Database
from guidebot.db.repo import sop_tasks as tasks_repo
from guidebot.db.types import utcnow
from guidebot.outbox import Executor, Outbox
from guidebot.settings import Settings, TenantSettings
from guidebot.stats import definitions as d
from guidebot.stats.service import StatsService
from guidebot.wecom.client import WeComClient
from guidebot.workbench.service import Span, Workbench

log = logging.getLogger(__name__)

KIND = "manager_weekly"  # the outbox kind (an app message in usage metering)
CURSOR = "manager_weekly"  # job state: the Monday of the last week whose reports were sent
TOP_GUIDES = 3
PENDING_NAMED = 5
IN_FLIGHT = 8  # reports handed to WeCom at once (each within its manager's app budget)


def outbox_key(manager: str, store: str, week: date) -> str:
    return f"weekly:{manager}:{store}:{week.isoformat()}"


def due_week(tenant: TenantSettings, now: datetime) -> date | None:
    """The Monday of the week reported at `now`: the week before this one once this week's
    report time has come; None before it (last week's report is not sent late) or when the
    report is off."""
    when = tenant.alerts.manager_weekly
    if when is None:
        return None
    local = now.astimezone(tenant.tz)
    this_monday = local.date() - timedelta(days=local.weekday())
    if (local.weekday(), local.time()) < (when.weekday, when.at):
        return None
    return this_monday - timedelta(days=7)


def change(now: int, before: int) -> str | None:
    """"+25%" / "-10%" / "+0%" (whole percent, half away from zero); None when `before` is 0."""
    if before == 0:
        return None
    diff = now - before
    percent = (abs(diff) * 200 + before) // (before * 2)
    return f"{'-' if diff < 0 else '+'}{percent}%"


@dataclass(frozen=True)
class StoreWeek:
    """What one store's report says: its week, the week before, the month's targets."""

    store_id: str
    name: str
    week: dict[str, Any]  # the workbench's store view over the week
    before: dict[str, Any]  # its figures over the week before
    month: str
    month_to: date
    targets: dict[str, str] | None  # the month's progress strings up to month_to


class ManagerWeekly:
    def __init__(self, settings: Settings, db: Database, content: ChatContent,
                 workbench: Workbench, stats: StatsService, outbox: Outbox,
                 client_for: Callable[[str], WeComClient], *, quota: AppQuota,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._settings, self._db, self._content = settings, db, content
        self._workbench, self._stats = workbench, stats
        self._outbox, self._client_for, self._quota = outbox, client_for, quota
        self.clock = clock  # tests move it
        self._once = OncePerPeriod(db, CURSOR)
        self._warned: set[tuple[str, date, str]] = set()  # (tenant, week, manager) logged

    async def run_if_due(self, tenant_id: str) -> int | None:
        """Send the week's reports when they are due and not yet sent: how many were handed
        to the outbox now; None when not due, done already, another process is sending
        them, or there is no manager to send to yet."""
        tenant = self._settings.tenant(tenant_id)
        week = due_week(tenant, self.clock())
        if week is None:
            return None
        sent = await self._once.run(tenant_id, week.isoformat(),
                                    partial(self.send_week, tenant, week))
        if sent is not None:
            log.info("manager weekly tenant=%s week=%s sent=%s", tenant_id, week, sent)
        return sent

    async def send_week(self, tenant: TenantSettings, week: date) -> int | None:
        """Each manager's report on each of their stores for the week from Monday `week`
        that has not been sent (by its outbox key); how many were handed to the outbox now.
        The week's reports are registered in one transaction, then sent IN_FLIGHT at a time.
        None when there is no manager to send to (the address book not synced yet, no
        leader set): the week is not done then, and the next scan within it tries again."""
        managers = await self._workbench.managers(tenant)
        self._warn_unknown(tenant.id, week, managers.unknown)
        wanted = {outbox_key(m, s, week): (m, s) for m, stores in managers.known.items()
                  for s in stores}
        if not wanted:
            return None  # nobody to send to yet: the week stays open (the next scan tries)
        async with self._db.read() as s:
            already = await tasks_repo.outbox_keys(s, tenant=tenant.id, keys=list(wanted))
        todo = {k: v for k, v in sorted(wanted.items()) if k not in already}
        if not todo:
            return 0
        await self._stats.upkeep()  # the daily statistics up to now
        stores = await self.gather(tenant, {s for _, s in todo.values()}, week)
        rows = [(key, app_text(manager, self.text(tenant, stores[store])))
                for key, (manager, store) in todo.items()]
        sent = await send_batch(self._db, self._outbox, self.send, tenant=tenant.id, kind=KIND,
                                rows=rows, in_flight=IN_FLIGHT)
        for key, status in sent:
            log.info("manager weekly tenant=%s key=%s send=%s", tenant.id, key, status)
        return len(sent)

    async def gather(self, tenant: TenantSettings, store_ids: set[str],
                     week: date) -> dict[str, StoreWeek]:
        """Each store's week from Monday `week`, the week before and the month up to that
        Sunday, as the workbench's store view shows them."""
        sunday = week + timedelta(days=6)
        names = await self._workbench.store_names(tenant, store_ids)
        this = Span("week", week, sunday, None)
        before = Span("week_before", week - timedelta(days=7), week - timedelta(days=1), None)
        month = sunday.strftime("%Y-%m")
        to_date = Span("month_to_date", sunday.replace(day=1), sunday, month)
        out = {}
        for store_id in sorted(store_ids):
            out[store_id] = StoreWeek(
                store_id, names[store_id],
                await self._workbench.store(tenant, store_id, this),
                (await self._workbench.store(tenant, store_id, before))["figures"],
                month, sunday,
                (await self._workbench.store(tenant, store_id, to_date))["targets"])
        return out

    def _warn_unknown(self, tenant: str, week: date, unknown: dict[str, set[str]]) -> None:
        """Log (once per process and week) each stores.toml manager who gets no report as
        the address book does not know them as a current member."""
        for userid, stores in sorted(unknown.items()):
            if (tenant, week, userid) not in self._warned:
                self._warned.add((tenant, week, userid))
                log.warning("manager weekly tenant=%s manager=%s stores=%s: not a current "
                            "member in the address book, no report", tenant, userid,
                            ",".join(sorted(stores)))

    def text(self, tenant: TenantSettings, facts: StoreWeek) -> str:
        """The report (content_library/chat/texts.toml `weekly_*`)."""
        text = self._content.text
        figures, before = facts.week["figures"], facts.before
        sunday = facts.month_to
        lines = [text("weekly_header", store=facts.name,
                      start=(sunday - timedelta(days=6)).isoformat(), end=sunday.isoformat()),
                 text("weekly_customers", adds=figures["adds"], deletions=figures["deletions"],
                      net=figures["net_growth"]),
                 text("weekly_orders", orders=figures["orders"],
                      orders_change=self._change(figures["orders"], before["orders"]),
                      gmv=d.yuan(figures["gmv_fen"]),
                      gmv_change=self._change(figures["gmv_fen"], before["gmv_fen"]))]
        top = [g for g in facts.week["guides"] if g["gmv_fen"] > 0][:TOP_GUIDES]
        if top:
            lines.append(text("weekly_top", n=len(top), guides=text("weekly_top_sep").join(
                text("weekly_top_guide", name=g["name"] or g["guide"], gmv=d.yuan(g["gmv_fen"]),
                     adds=g["adds"]) for g in top)))
        pending = sorted((g for g in facts.week["guides"] if g["pending"]),
                         key=lambda g: (-g["pending"], g["guide"]))
        if pending:
            named = text("weekly_pending_sep").join(
                text("weekly_pending_guide", name=g["name"] or g["guide"], count=g["pending"])
                for g in pending[:PENDING_NAMED])
            if len(pending) > PENDING_NAMED:
                named += text("weekly_pending_more", n=len(pending))
            lines.append(text("weekly_pending", guides=named))
        goals = [text(name, progress=shown) for name, shown in (
            ("weekly_target_adds", (facts.targets or {}).get("adds", "")),
            ("weekly_target_gmv", (facts.targets or {}).get("gmv", ""))) if shown]
        if goals:
            lines.append(text("weekly_target", period=facts.month, date=sunday.isoformat(),
                              goals=text("weekly_target_sep").join(goals)))
        url = (f"{self._settings.server.public_url}/m/{quote(tenant.id, safe='')}"
               f"?store={quote(facts.store_id, safe='')}")
        lines.append(text("weekly_link", url=url))
        return "\n".join(lines)

    def _change(self, now: int, before: int) -> str:
        found = change(now, before)
        if found is None:
            return self._content.text("weekly_change_none")
        return self._content.text("weekly_change", change=found)

    async def send(self, tenant: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The outbox executor of kind "manager_weekly": message/send to the manager, within
        their app message budget."""
        return await self._quota.send(self._client_for(tenant), tenant, payload)

    def executors(self) -> dict[str, Executor]:
        return {KIND: self.send}
