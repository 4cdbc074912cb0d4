"""Singleton scans: tags marked since the last pass (tag_added), deleted relations, and the
day's birthdays (birthday SOPs) and the day's lapsed customers (no_purchase SOPs)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import date, datetime, timedelta

from guidebot.commerce.birthdays import coming_birthday
from guidebot.content.sop_spec import BIRTHDAY_TRIGGER, NO_PURCHASE_TRIGGER
from guidebot.db.engine import Database
from guidebot.db.repo import sop_tasks as repo
from guidebot.db.types import utcnow
from guidebot.settings import TenantSettings
from guidebot.sop.engine import SopEngine
from guidebot.sop.versions import Current

log = logging.getLogger(__name__)

# Tag rows commit in any order across processes: look back over this much of the past pass.
OVERLAP = timedelta(minutes=1)


async def scan_tags(db: Database, engine: SopEngine, tenant: str) -> int:
    async with db.read() as s:
        mark = await repo.get_cursor(s, tenant=tenant, name="scan:tags")
    since = datetime.fromisoformat(mark) - OVERLAP if mark else utcnow() - OVERLAP
    async with db.read() as s:
        rows = await repo.tags_added_since(s, tenant=tenant, since=since)
    for customer, guide, tag, at in rows:
        await engine.on_tag_added(tenant, customer, guide, tag, at)
    newest = max([at for *_, at in rows], default=since + OVERLAP)
    async with db.write() as s:
        await repo.set_cursor(s, tenant=tenant, name="scan:tags", value=newest.isoformat())
    return len(rows)


async def scan_deletions(db: Database, engine: SopEngine, tenant: str) -> int:
    async with db.read() as s:
        mark = int(await repo.get_cursor(s, tenant=tenant, name="scan:follows") or 0)
        rows = await repo.deletions_after(s, tenant=tenant, after_id=mark)
    for row in rows:
        await engine.exit(tenant, row.external_userid, "contact_deleted", guide=row.guide)
    if rows:
        async with db.write() as s:
            await repo.set_cursor(s, tenant=tenant, name="scan:follows", value=str(rows[-1].id))
    return len(rows)


async def scan_birthdays(db: Database, engine: SopEngine, tenant: TenantSettings,
                         currents: dict[str, Current], now: datetime) -> int:
    """Once a day (the tenant's) per enabled birthday SOP: enroll the customers whose
    birthday is its days_before days away. A day missed (guidebot was down over it) is made
    up the next day, one day back at most; its trigger time is that day's 00:00."""
    return await _daily(db, tenant, currents, now, BIRTHDAY_TRIGGER, engine.on_birthdays)


async def scan_no_purchase(db: Database, engine: SopEngine, tenant: TenantSettings,
                           currents: dict[str, Current], now: datetime) -> int:
    """Once a day (the tenant's) per enabled no_purchase SOP: enroll the customers whose
    `since` moment is its `days` days before that day, as birthdays are (a missed day made up
    the next day, one day back at most)."""
    return await _daily(db, tenant, currents, now, NO_PURCHASE_TRIGGER, engine.on_no_purchase)


async def _daily(db: Database, tenant: TenantSettings, currents: dict[str, Current],
                 now: datetime, trigger: str,
                 run: Callable[[str, Current, date], Awaitable[int]]) -> int:
    """Run `run` once for each day of the tenant not done yet, per enabled SOP of `trigger`
    (a cursor `<trigger>:<sop>` holds the last day done): today, and yesterday too when the
    last run was before it (the days before are not made up)."""
    today = now.astimezone(tenant.tz).date()
    enrolled = 0
    for sop_id, current in sorted(currents.items()):
        if not current.enabled or current.spec.trigger.on != trigger:
            continue
        name = f"{trigger}:{sop_id}"
        async with db.read() as s:
            mark = await repo.get_cursor(s, tenant=tenant.id, name=name)
        last = date.fromisoformat(mark) if mark else None
        if last is not None and last >= today:
            continue
        days = [today] if last is None or last >= today - timedelta(days=1) \
            else [today - timedelta(days=1), today]
        for day in days:
            enrolled += await run(tenant.id, current, day)
        async with db.write() as s:
            await repo.set_cursor(s, tenant=tenant.id, name=name, value=today.isoformat())
    return enrolled


async def birthdays_set(engine: SopEngine, tenant: TenantSettings,
                        currents: dict[str, Current], birthdays: Mapping[str, tuple[int, int]],
                        now: datetime) -> int:
    """Birthdays (month, day by customer) just set or changed: for each enabled birthday SOP,
    a customer whose coming birthday is fewer than its days_before days away (its trigger day
    is today or already past, so the daily scan has passed or may pass it) is enrolled now,
    for that birthday's round and timed from the trigger day's 00:00 as the scan would have.
    The round keeps it once: a customer already celebrated this round is left alone."""
    today = now.astimezone(tenant.tz).date()
    enrolled = 0
    for _, current in sorted(currents.items()):
        if not current.enabled or current.spec.trigger.on != BIRTHDAY_TRIGGER:
            continue
        ahead = timedelta(days=current.spec.trigger.days_before)
        due: dict[date, list[str]] = {}
        for customer, (month, day) in sorted(birthdays.items()):
            trigger_day = coming_birthday(month, day, today) - ahead
            if trigger_day <= today:
                due.setdefault(trigger_day, []).append(customer)
        for trigger_day, customers in sorted(due.items()):
            enrolled += await engine.on_birthdays(tenant.id, current, trigger_day,
                                                  customers=customers)
    return enrolled
