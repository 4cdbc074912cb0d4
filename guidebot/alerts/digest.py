"""导购早报: once a day, at `[tenants.<id>.alerts] morning_digest` (a time of day in the
tenant's time zone), each active guide who has something to hear gets one app message: the
群发 tasks waiting for their confirmation (how many, up to three titles and how many more),
the follow-up reminders of yesterday and today, yesterday's new customers and deletions by
customers, yesterday's credited orders with their amount, and the month's commission so far.
A guide with none of these gets nothing; a guide who left (inactive in the address book)
nothing.

"Yesterday" is the tenant's day before the digest's day. The tasks are the ones 今日任务 reads
and titles (guidebot/chat/guide.py); the commission is 业绩's statement for the month.

Each message goes through the outbox under `digest:<guide>:<day>`, so a guide hears one per
day whatever runs it: a second run, a restart, another process (the run itself is one
process at a time through a PostgreSQL advisory lock, and the finished day is recorded). A
process that starts after the time sends that day's digest then; a day that has passed is
never sent. Like every app message it draws from the guide's app message budget."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from guidebot.alerts.once import OncePerPeriod, send_batch
from guidebot.app_quota import AppQuota, app_text
from guidebot.chat.guide import GuideChat
from guidebot.commerce import periods
from guidebot.commerce.statements import statement
from guidebot.content.chat import ChatContent
from guidebot.db.engine import Database
from guidebot.db.repo import commerce_orders as orders_repo
from guidebot.db.repo import contacts as contacts_repo
from guidebot.db.repo import directory as directory_repo
from guidebot.db.repo import sop_tasks as tasks_repo
from guidebot.db.types import utcnow
from guidebot.outbox import Executor, Outbox
from guidebot.settings import Settings, TenantSettings
from guidebot.stats import definitions as d
from guidebot.stats.targets import Targets, progress
from guidebot.wecom.client import WeComClient

log = logging.getLogger(__name__)

KIND = "morning_digest"  # the outbox kind (an app message in usage metering)
CURSOR = "morning_digest"  # job state: the last tenant day whose digests were all sent
MASS_KINDS = ("guide_task", "group_task")  # 群发 a guide confirms in the client
WAITING = "sent"  # a 群发 task WeCom holds for the guide to send
REMINDER = "reminder"
NOT_REMINDED = ("cancelled", "failed")  # reminders that never reached the guide
TITLES_LISTED = 3
IN_FLIGHT = 8  # digests handed to WeCom at once (each within its guide's app budget)



def outbox_key(guide: str, day: date) -> str:
    return f"digest:{guide}:{day.isoformat()}"


def due_day(tenant: TenantSettings, now: datetime) -> date | None:
    """The tenant day whose digest is due at `now`: today once the digest's time has come,
    None before it (yesterday's is not sent late) or when the digest is off."""
    at = tenant.alerts.morning_digest
    if at is None:
        return None
    local = now.astimezone(tenant.tz)
    return local.date() if local.time() >= at else None


@dataclass
class GuideDay:
    """What one guide's digest says; all zero and empty: no digest."""

    waiting: int = 0
    titles: tuple[str, ...] = ()
    more_titles: int = 0  # the sources of waiting tasks not named
    reminders: int = 0
    reminded_customers: int = 0
    added: int = 0
    deleted: int = 0
    orders: int = 0
    gmv_fen: int = 0
    commission_fen: int = 0
    # 业绩目标: the month's targets (None: none set) and what the guide did so far
    target_adds: int | None = None
    target_gmv_fen: int | None = None
    month_adds: int = 0
    month_gmv_fen: int = 0

    def empty(self) -> bool:
        """Nothing to do and nothing new since yesterday: no digest (the month's commission
        alone, the same every morning, is not news; it rides along with the rest)."""
        return not (self.waiting or self.reminders or self.added or self.deleted
                    or self.orders)


def _goal(found: dict[str, Any] | None) -> dict[str, Any]:
    """A guide's 业绩目标 for the month (targets.month's row) as GuideDay fields."""
    if found is None:
        return {}
    return {"target_adds": found["adds"]["target"], "month_adds": found["adds"]["actual"],
            "target_gmv_fen": found["gmv_fen"]["target"],
            "month_gmv_fen": found["gmv_fen"]["actual"]}


class MorningDigest:
    def __init__(self, settings: Settings, db: Database, content: ChatContent,
                 guide_chat: GuideChat, outbox: Outbox,
                 client_for: Callable[[str], WeComClient], *, quota: AppQuota,
                 targets: Targets, clock: Callable[[], datetime] = utcnow) -> None:
        self._settings, self._db, self._content = settings, db, content
        self._guide_chat, self._outbox, self._client_for = guide_chat, outbox, client_for
        self._quota, self._targets = quota, targets
        self.clock = clock  # tests and the demo move it
        self._once = OncePerPeriod(db, CURSOR)

    async def run_if_due(self, tenant_id: str) -> int | None:
        """Send the day's digests when they are due and not yet sent: how many were handed
        to the outbox now (0 when every guide had nothing or had theirs already); None when
        not due, done already, or another process is sending them."""
        tenant = self._settings.tenant(tenant_id)
        now = self.clock()
        day = due_day(tenant, now)
        if day is None:
            return None
        sent = await self._once.run(tenant_id, day.isoformat(),
                                    partial(self.send_day, tenant, day, now))
        if sent is not None:
            log.info("morning digest tenant=%s day=%s sent=%s", tenant_id, day, sent)
        return sent

    async def send_day(self, tenant: TenantSettings, day: date, now: datetime) -> int:
        """Each active guide's digest for `day` that has not been sent (by its outbox key)
        and has something to say; how many were handed to the outbox now (one the outbox
        could not send yet it retries, or holds while the guide's budget is spent). The
        day's digests are registered in one transaction, then sent IN_FLIGHT at a time."""
        async with self._db.read() as s:
            guides = await directory_repo.active_guides(s, tenant=tenant.id)
            already = await tasks_repo.outbox_keys(
                s, tenant=tenant.id, keys=[outbox_key(g, day) for g in guides])
        todo = [g for g in guides if outbox_key(g, day) not in already]
        if not todo:
            return 0
        days = await self.gather(tenant, todo, day, now)
        rows = [(outbox_key(guide, day), app_text(guide, self.text(tenant, day, now,
                                                                  days[guide])))
                for guide in todo if not days[guide].empty()]
        sent = await send_batch(self._db, self._outbox, self.send, tenant=tenant.id, kind=KIND,
                                rows=rows, in_flight=IN_FLIGHT)
        for key, status in sent:
            log.info("morning digest tenant=%s key=%s send=%s", tenant.id, key, status)
        return len(sent)

    async def gather(self, tenant: TenantSettings, guides: list[str], day: date,
                     now: datetime) -> dict[str, GuideDay]:
        """What each guide's digest for `day` says, read at `now`."""
        yesterday = day - timedelta(days=1)
        start, end = tenant.day_bounds(yesterday, yesterday)
        async with self._db.read() as s:
            follows = await contacts_repo.follow_event_counts(
                s, tenant=tenant.id, start=start, end=end,
                actions=(d.ADDED, "deleted_by_customer"))
            orders = await orders_repo.guide_totals(s, tenant=tenant.id, start=start, end=end,
                                                    rules=sorted(d.GUIDE_RULES))
            waiting = await tasks_repo.waiting_mass_tasks(s, tenant=tenant.id, kinds=MASS_KINDS,
                                                          status=WAITING)
            sources = {g: await tasks_repo.first_waiting_sources(
                s, tenant=tenant.id, guide=g, kinds=MASS_KINDS, status=WAITING,
                limit=TITLES_LISTED) for g in guides if g in waiting}
            reminders = await tasks_repo.reminders_made(
                s, tenant=tenant.id, kind=REMINDER, not_statuses=NOT_REMINDED, start=start,
                end=now)
        body = await statement(self._db, tenant, periods.of(now, tenant.tz))
        commission = {r["guide"]: int(r["net_fen"]) for r in body["statements"]}
        month = await self._targets.month(tenant.id, periods.of(now, tenant.tz))
        goals = {g["id"]: g for g in month["guides"]}
        out = {}
        for guide in guides:
            tasks, sourced = waiting.get(guide, (0, 0))
            titles = list(dict.fromkeys(self._guide_chat.title(source)
                                        for source in sources.get(guide, [])))
            reminded, customers = reminders.get(guide, (0, 0))
            count, fen = orders.get(guide, (0, 0))
            out[guide] = GuideDay(
                waiting=tasks, titles=tuple(titles), more_titles=max(sourced - TITLES_LISTED, 0),
                reminders=reminded, reminded_customers=customers,
                added=follows.get(guide, {}).get(d.ADDED, 0),
                deleted=follows.get(guide, {}).get("deleted_by_customer", 0),
                orders=count, gmv_fen=fen, commission_fen=commission.get(guide, 0),
                **_goal(goals.get(guide)))
        return out

    def text(self, tenant: TenantSettings, day: date, now: datetime, facts: GuideDay) -> str:
        """The digest (content_library/chat/texts.toml `digest_*`): a header, one line per
        item that has something, and a footer."""
        text = self._content.text
        lines = [text("digest_header", date=day.isoformat())]
        if facts.waiting:
            titles = "、".join(facts.titles) + (text("digest_titles_more", n=facts.more_titles)
                                               if facts.more_titles else "")
            lines.append(text("digest_tasks", count=facts.waiting, titles=titles))
        if facts.reminders:
            lines.append(text("digest_reminders", count=facts.reminders,
                              customers=facts.reminded_customers))
        if facts.added:
            lines.append(text("digest_added", count=facts.added))
        if facts.deleted:
            lines.append(text("digest_deleted", count=facts.deleted))
        if facts.orders:
            lines.append(text("digest_orders", count=facts.orders, amount=d.yuan(facts.gmv_fen)))
        if facts.commission_fen:
            lines.append(text("digest_commission", period=periods.of(now, tenant.tz),
                              net=d.yuan(facts.commission_fen)))
        goals = [text(name, progress=progress(done, target, money=money))
                 for name, done, target, money in (
                     ("digest_target_adds", facts.month_adds, facts.target_adds, False),
                     ("digest_target_gmv", facts.month_gmv_fen, facts.target_gmv_fen, True))
                 if target is not None]
        if goals:
            lines.append(text("digest_target", period=periods.of(now, tenant.tz),
                              goals=text("digest_target_sep").join(goals)))
        lines.append(text("digest_footer"))
        return "\n".join(lines)

    async def send(self, tenant: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The outbox executor of kind "morning_digest": message/send to the guide, within
        their app message budget."""
        return await self._quota.send(self._client_for(tenant), tenant, payload)

    def executors(self) -> dict[str, Executor]:
        return {KIND: self.send}
