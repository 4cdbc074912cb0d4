"""获客助手's paid quota and each link's figures: links stop working when the quota runs out,
so guidebot reads it (once a day, on demand, and at once when WeCom says it runs low), keeps
the last reading per tenant and tells HQ when it is low; a link's clicks and new customers
come from WeCom beside guidebot's own count of adds through it; the customer_acquisition
events WeCom sends about links are recorded."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from guidebot import events as ev
from guidebot.db.engine import Database
from guidebot.db.models import AcquisitionQuota, ChannelCode
from guidebot.db.repo import acquisition as repo
from guidebot.db.repo import sop_tasks as job_state
from guidebot.db.types import utcnow
from guidebot.errors import WeComError
from guidebot.settings import Settings, TenantSettings
from guidebot.wecom.client import WeComClient, answer_time

log = logging.getLogger(__name__)

# The balance is low at or below LOW_SHARE of the total, or at or below LOW_BALANCE links
# (whichever is reached first); 0 is exhausted. HQ is warned when it has link codes.
LOW_SHARE = 0.10
LOW_BALANCE = 50
READ_EVERY = timedelta(days=1)  # the daily reading (the job checks hourly)
# What the events mark on a link code (ChannelCode.wecom_status).
LINK_STATUS = {"link_unavailable": "unavailable", "delete_link": "deleted"}


def level_of(total: int, balance: int) -> str:
    """`exhausted`, `low` or `ok` (see LOW_SHARE and LOW_BALANCE)."""
    if balance <= 0:
        return "exhausted"
    if balance <= LOW_BALANCE or balance <= total * LOW_SHARE:
        return "low"
    return "ok"


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _quota_list(answer: dict[str, Any]) -> list[dict[str, int]]:
    """quota_list as {expire_date (unix), balance}, soonest first; entries without a time
    are left out."""
    found = answer.get("quota_list")
    rows = [{"expire_date": _int(q.get("expire_date")), "balance": _int(q.get("balance"))}
            for q in (found if isinstance(found, list) else []) if isinstance(q, dict)]
    return sorted((r for r in rows if r["expire_date"] > 0), key=lambda r: r["expire_date"])


def quota_view(row: AcquisitionQuota | None, links: int, tenant: TenantSettings,
               now: datetime) -> dict[str, Any]:
    """The last reading as the API and the console give it: `level` unread | ok | low |
    exhausted, `warning` (low or exhausted while the tenant has live link codes, else None),
    each batch's expiry, and the next one to expire (its day in the tenant's time zone)."""
    if row is None:
        return {"read_at": None, "total": None, "balance": None, "quota_list": [],
                "next_expiry": None, "level": "unread", "warning": None, "links": links}
    timed = [(at, _int(entry.get("balance"))) for entry in json.loads(row.quota_list or "[]")
             if (at := answer_time(entry.get("expire_date"))) is not None]
    batches: list[dict[str, Any]] = [
        {"expire_date": at.isoformat(), "day": at.astimezone(tenant.tz).date().isoformat(),
         "balance": n} for at, n in timed]
    coming = [b for b, (at, n) in zip(batches, timed, strict=True) if at > now]
    with_balance = [b for b, (at, n) in zip(batches, timed, strict=True) if at > now and n > 0]
    nxt = (with_balance or coming)[0] if coming else None
    level = level_of(row.total, row.balance)
    return {"read_at": row.read_at.isoformat(), "total": row.total, "balance": row.balance,
            "quota_list": batches, "next_expiry": nxt, "level": level,
            "warning": level if level != "ok" and links else None, "links": links}


def _when(event: ev.Event) -> datetime:
    """When WeCom said it (CreateTime), or now when the callback had no time."""
    return event.created_at if event.created_at.timestamp() > 0 else utcnow()


class AcquisitionService:
    def __init__(self, settings: Settings, db: Database,
                 client_for: Callable[[str], WeComClient]) -> None:
        self._settings = settings
        self._db = db
        self._client_for = client_for

    async def read_quota(self, tenant: str) -> dict[str, Any]:
        """WeCom's quota now, stored as the tenant's last reading. A refusal raises
        (WeComError) and keeps the last reading."""
        answer = await self._client_for(tenant).acquisition_quota()
        total, balance = _int(answer.get("total")), _int(answer.get("balance"))
        at = utcnow()
        async with self._db.write() as s:
            await repo.save_quota(s, tenant=tenant, total=total, balance=balance,
                                  quota_list=json.dumps(_quota_list(answer)), read_at=at)
        log.info("acquisition quota read tenant=%s total=%s balance=%s level=%s", tenant, total,
                 balance, level_of(total, balance))
        return await self.quota(tenant)

    async def quota(self, tenant: str) -> dict[str, Any]:
        """The last reading (quota_view), without asking WeCom."""
        async with self._db.read() as s:
            row = await repo.get_quota(s, tenant=tenant)
            links = await repo.live_links(s, tenant=tenant)
        return quota_view(row, links, self._settings.tenant(tenant), utcnow())

    async def read_if_due(self, tenant: str, *, now: datetime | None = None) -> bool:
        """The daily reading, for a tenant that has link codes or was read before, once per
        READ_EVERY, in one process at a time. False: not due (or another process reads); a
        refusal is logged and tried again by the next check."""
        now = now or utcnow()
        async with job_state.singleton(self._db.engine, f"acquisition-quota:{tenant}") as mine:
            if not mine:
                return False
            async with self._db.read() as s:
                row = await repo.get_quota(s, tenant=tenant)
                links = await repo.live_links(s, tenant=tenant)
            if (row is None and not links) or (row is not None
                                                and now - row.read_at < READ_EVERY):
                return False
            try:
                await self.read_quota(tenant)
            except WeComError as exc:
                log.warning("acquisition quota read failed tenant=%s errcode=%s; the job "
                            "tries again", tenant, exc.errcode)
                return False
            return True

    async def link_changed(self, event: ev.AcquisitionChanged) -> int | None:
        """link_unavailable / delete_link: the link code with the event's link id marked so
        the console shows it (the field's name is assumed, see parse.py); the code's id, or
        None when the event names no link guidebot made."""
        status = LINK_STATUS[event.change_type]
        if not event.link_id:
            log.warning("customer_acquisition %s without a link id tenant=%s; nothing marked",
                        event.change_type, event.tenant)
            return None
        async with self._db.write() as s:
            code_id = await repo.mark_link(s, tenant=event.tenant, link_id=event.link_id,
                                           status=status, at=_when(event))
        log.info("acquisition link %s tenant=%s link_id=%s code=%s", status, event.tenant,
                 event.link_id, code_id)
        return code_id

    def customer_seen(self, event: ev.AcquisitionChanged) -> None:
        """customer_start_chat / friend_request: nothing is recorded (the add itself arrives
        as add_external_contact); the ids are logged."""
        log.info("customer_acquisition %s tenant=%s link_id=%s userid=%s external_userid=%s",
                 event.change_type, event.tenant, event.link_id, event.userid,
                 event.external_userid)

    async def statistic(self, tenant: TenantSettings, code: ChannelCode, day_from: date,
                        day_to: date) -> dict[str, Any]:
        """A link code's figures over the tenant's days day_from..day_to: WeCom's clicks and
        new customers (customer_acquisition/statistic, the range's end capped at now) beside
        guidebot's adds through the code. A WeCom refusal (it may refuse long ranges; its
        longest is not known) comes back as `refused` with its `errcode` (None: no answer),
        WeCom's figures None."""
        start, end = tenant.day_bounds(day_from, day_to)
        async with self._db.read() as s:
            adds = await repo.adds_between(s, tenant=tenant.id, code_id=code.id or 0,
                                           start=start,
                                           end=end)
        result: dict[str, Any] = {"from": day_from.isoformat(), "to": day_to.isoformat(),
                                  "adds": adds, "clicks": None, "new_customers": None,
                                  "refused": False, "errcode": None}
        if (code.kind != "link" or not code.config_id or code.deleted_at is not None
                or code.wecom_status == LINK_STATUS["delete_link"]):
            return result  # no WeCom figures: a QR code, or a link deleted in WeCom
        start_time = int(start.timestamp())
        end_time = max(start_time, min(int(end.timestamp()) - 1, int(utcnow().timestamp())))
        try:
            answer = await self._client_for(tenant.id).acquisition_statistic(
                link_id=code.config_id, start_time=start_time, end_time=end_time)
        except WeComError as exc:
            log.info("acquisition statistic refused tenant=%s link_id=%s errcode=%s",
                     tenant.id, code.config_id, exc.errcode)
            result["refused"], result["errcode"] = True, exc.errcode
            return result
        result["clicks"] = _int(answer.get("click_link_customer_cnt"))
        result["new_customers"] = _int(answer.get("new_customer_cnt"))
        return result
