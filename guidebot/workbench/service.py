"""What the mobile workbench shows. Who a member is (a guide of the tenant, the manager of
which stores), a guide's figures over a range (the daily statistics, as the console's guides
page reads them) with the month's 业绩目标, their to-dos today (the 群发 tasks waiting for
their confirmation, as 今日任务 and the morning digest count them, and follow-ups due), and a
store's figures with its guides ranked (as the console's stores and guides pages).

Store managers are the `department_leader`s WeCom names for the store's departments (stored
by the directory sync) and the `managers` stores.toml names for the store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from guidebot.alerts.digest import MASS_KINDS, WAITING
from guidebot.chat.guide import GuideChat
from guidebot.content.library import Library
from guidebot.db.engine import Database
from guidebot.db.repo import contacts as contacts_repo
from guidebot.db.repo import directory as directory_repo
from guidebot.db.repo import notes as notes_repo
from guidebot.db.repo import sop_tasks as tasks_repo
from guidebot.db.repo import store_managers as managers_repo
from guidebot.db.types import utcnow
from guidebot.settings import Settings, TenantSettings
from guidebot.stats.overview import credited, empty_row
from guidebot.stats.service import StatsService
from guidebot.stats.targets import Goal, Targets, month_of, progress

RANGES = ("this_month", "last_month", "last_7")  # the page's range switch, 本月 first
TITLES_LISTED = 10
FOLLOW_UPS_LISTED = 30


@dataclass(frozen=True)
class Member:
    """A member of the tenant as the workbench knows them: a guide (with their name and
    store) and/or the manager of some stores (id → name, in id order)."""

    userid: str
    name: str
    guide: bool
    stores: dict[str, str]

    @property
    def known(self) -> bool:
        return self.guide or bool(self.stores)


@dataclass(frozen=True)
class Managers:
    """The tenant's store managers → their stores' ids; `unknown`: the stores.toml managers
    the address book does not know as current members → the stores they are named for."""

    known: dict[str, set[str]]
    unknown: dict[str, set[str]]


@dataclass(frozen=True)
class Span:
    name: str  # one of RANGES
    day_from: date
    day_to: date
    month: str | None  # YYYY-MM when the span is one calendar month (本月 so far, 上月)


def spans(today: date) -> dict[str, Span]:
    """本月 (so far), 上月 and 近7天 (today included), in the tenant's days."""
    first = today.replace(day=1)
    last_end = first - timedelta(days=1)
    found = {"this_month": (first, today), "last_month": (last_end.replace(day=1), last_end),
             "last_7": (today - timedelta(days=6), today)}
    return {name: Span(name, a, b, month_of(a, b, today)) for name, (a, b) in found.items()}


def _goals(goal: Goal | None, adds: int, gmv_fen: int) -> dict[str, Any] | None:
    """A guide's or store's targets with completion ("23 / 30 · 77%"); None without any."""
    if goal is None:
        return None
    return {"adds": progress(adds, goal.adds), "gmv": progress(gmv_fen, goal.gmv_fen,
                                                                money=True)}


class Workbench:
    def __init__(self, settings: Settings, db: Database, library: Library, stats: StatsService,
                 targets: Targets, guide_chat: GuideChat) -> None:
        self._settings, self._db, self._library = settings, db, library
        self._stats, self._targets, self._guide_chat = stats, targets, guide_chat
        self.clock: Callable[[], datetime] = utcnow  # "today" (tests set it)

    def today(self, tenant: TenantSettings) -> date:
        return self.clock().astimezone(tenant.tz).date()

    def span(self, tenant: TenantSettings, name: str) -> Span:
        found = spans(self.today(tenant))
        return found.get(name, found[RANGES[0]])

    async def member(self, tenant: TenantSettings, userid: str) -> Member:
        async with self._db.read() as s:
            guide = await contacts_repo.get_guide(s, tenant=tenant.id, userid=userid)
            led = await managers_repo.stores_led_by(s, tenant=tenant.id, userid=userid)
        managed = led | self._library.stores.managed_by(userid)
        return Member(userid, guide.name if guide else "",
                      guide is not None and guide.active,
                      await self.store_names(tenant, managed))

    async def store_names(self, tenant: TenantSettings, ids: set[str]) -> dict[str, str]:
        """Each store's name (the directory's, else stores.toml's, else its id), in id order."""
        names = await self._stats.records.store_names(tenant.id) if ids else {}
        mapped = {s.id: s.name for s in self._library.stores.by_department.values()}
        return {sid: names.get(sid) or mapped.get(sid) or sid for sid in sorted(ids)}

    async def managers(self, tenant: TenantSettings) -> Managers:
        """Every store manager of the tenant → the ids of the stores they manage (the
        departments' leaders and stores.toml's managers). A stores.toml manager the address
        book does not know as a current member (never synced, a typo, or left) manages
        nothing here and is listed apart (`unknown`); a leader who left neither."""
        async with self._db.read() as s:
            led = await managers_repo.leaders(s, tenant=tenant.id)
            active = await directory_repo.guides_active(s, tenant=tenant.id)
        out: dict[str, set[str]] = {}
        for userid, store_id in led:
            if active.get(userid, True):  # the address book named them; gone once they left
                out.setdefault(userid, set()).add(store_id)
        unknown: dict[str, set[str]] = {}
        for userid, stores in self._library.stores.by_manager.items():
            into = out if active.get(userid) else unknown
            into.setdefault(userid, set()).update(stores)
        return Managers(out, unknown)

    async def my_figures(self, tenant: TenantSettings, guide: str, span: Span
                         ) -> dict[str, Any]:
        """The guide's figures over the span (adds, deletions, orders and GMV credited,
        commission) and, for a month, their targets with completion."""
        rows = await self._stats.leaderboard(tenant.id, span.day_from, span.day_to, "guide")
        mine = next((r for r in rows if r["key"] == guide), empty_row(guide))
        goal = None
        if span.month:
            goal = (await self._targets.goals(tenant.id, span.month))["guide"].get(guide)
        return {**mine, "targets": _goals(goal, mine["adds"], mine["gmv_fen"])}

    async def todo(self, tenant: TenantSettings, guide: str) -> dict[str, Any]:
        """Today's to-dos: the 群发 tasks waiting for the guide's confirmation (how many, and
        their titles) and the follow-ups due today or overdue (with the customers)."""
        today = self.today(tenant)
        async with self._db.read() as s:
            waiting = await tasks_repo.waiting_mass_tasks(s, tenant=tenant.id,
                                                          kinds=MASS_KINDS, status=WAITING)
            sources = await tasks_repo.first_waiting_sources(
                s, tenant=tenant.id, guide=guide, kinds=MASS_KINDS, status=WAITING,
                limit=TITLES_LISTED)
            due, follow_ups = await notes_repo.open_follow_ups(
                s, tenant=tenant.id, guide=guide, day=today, limit=FOLLOW_UPS_LISTED)
        tasks, sourced = waiting.get(guide, (0, 0))
        return {"tasks": tasks,
                "titles": list(dict.fromkeys(self._guide_chat.title(x) for x in sources)),
                "more_titles": max(sourced - TITLES_LISTED, 0),
                "follow_ups": due,
                "customers": [{"external_userid": c, "name": n, "day": d.isoformat(),
                               "overdue": d < today} for c, n, d in follow_ups]}

    async def store(self, tenant: TenantSettings, store_id: str, span: Span) -> dict[str, Any]:
        """The store's figures over the span (the console's stores page for it) with its
        month's targets, and its guides ranked as the console's guides page ranks them (most
        GMV, then adds), each with their customers, figures, 群发 confirmation rate and the
        tasks waiting for them now. A guide's figures are those credited in this store (the
        daily statistics' store): one who moved between stores within the span is in each
        store's ranking with that store's part, so the guides' rows add up to the store's
        figures (apart from what no guide was credited with). The tasks waiting are counted
        for the store's own guides only (those in it now and active)."""
        stores = await self._stats.leaderboard(tenant.id, span.day_from, span.day_to,
                                               "store_id")
        figures = next((r for r in stores if r["key"] == store_id), empty_row(store_id))
        per_guide = {r["key"]: r for r in await self._stats.leaderboard(
            tenant.id, span.day_from, span.day_to, "guide", store_id=store_id)}
        credited_here = {k for k, r in per_guide.items() if credited(r)}
        async with self._db.read() as s:
            waiting = await tasks_repo.waiting_mass_tasks(s, tenant=tenant.id,
                                                          kinds=MASS_KINDS, status=WAITING)
        guides = []
        for row in await self._stats.records.guides(tenant.id):
            here = row["store_id"] == store_id and row["active"]
            if not here and row["guide"] not in credited_here:
                continue  # neither in the store now nor credited in it over the span
            done = per_guide.get(row["guide"], empty_row(row["guide"]))
            sent, confirmed = row["tasks_sent"], row["tasks_confirmed"]
            pending = waiting.get(row["guide"], (0, 0))[0] if here else 0  # the store's own
            guides.append({**done, **row, "pending": pending,
                           "confirm_rate": (confirmed * 100 + sent // 2) // sent if sent
                           else None})
        guides.sort(key=lambda r: (-r["gmv_fen"], -r["adds"], r["guide"]))
        goal = None
        if span.month:
            goal = (await self._targets.goals(tenant.id, span.month))["store"].get(store_id)
        return {"figures": figures, "guides": guides,
                "targets": _goals(goal, figures["adds"], figures["gmv_fen"])}
