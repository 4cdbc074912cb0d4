"""Every guide's app message budget: WeCom takes at most `app_msg_per_guide_per_min`
message/send messages to one member a minute and silently drops the rest (FACTS §3.7), so
every app message guidebot sends to a guide draws from one budget per (tenant, guide): SOP
reminders and notifications (the dispatcher takes slots for a pass in its own transaction),
handoff notices, answers to a guide's commands, material review notices, transfer notices,
删人提醒, 互动雷达 and 导购早报 (their outbox executors send through `AppQuota.send`, which
calls `hold` before calling WeCom).

A slot is a row of app_message_sends, taken in a short write transaction that holds the
guide's budget (a PostgreSQL advisory lock; SQLite has one writer), counts the guide's
sends of the last minute and records one if there is room: exact across processes. Without
room the executor raises the outbox's `Postponed`, due when the oldest send of the minute
leaves it; the call is made then and is never dropped by WeCom. A slot is spent even when
the call then fails (one message fewer in that minute, never one too many). Each taking
prunes the guide's rows older than PRUNE_AFTER, so the table holds a few minutes of sends.

Sends less than a minute in the future count too (another process's clock may run ahead);
rows farther off are not counted (a test's or the demo's moved SOP clock)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.engine import Database
from guidebot.db.repo import app_messages as repo
from guidebot.db.types import utcnow
from guidebot.outbox import Postponed
from guidebot.wecom.client import WeComClient

log = logging.getLogger(__name__)

WINDOW = timedelta(minutes=1)
TEXT_BYTES = 2048  # message/send text.content limit (FACTS §3.7): longer is truncated


def app_text(touser: str, text: str) -> dict[str, Any]:
    """The message/send payload of a text app message to one member, cut to TEXT_BYTES at a
    character boundary (WeCom would cut it anywhere)."""
    return {"touser": touser, "msgtype": "text",
            "text": {"content": text.encode()[:TEXT_BYTES].decode(errors="ignore")}}

PRUNE_AFTER = timedelta(minutes=5)


@dataclass(frozen=True)
class Slot:
    taken: bool
    free_at: datetime | None = None  # without a slot: when the oldest send leaves the minute


def recipients(touser: str) -> list[str]:
    """The members a message/send `touser` names ("a|b"); guidebot sends every app message
    to one guide, never to "@all" (which would be no guide's budget: it is not counted)."""
    return [u for u in dict.fromkeys(touser.split("|")) if u and u != "@all"]


class AppQuota:
    def __init__(self, db: Database, limit: Callable[[str], int], *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self._limit = limit
        self.clock = clock  # tests move it

    def limit(self, tenant: str) -> int:
        return self._limit(tenant)

    async def hold(self, tenant: str, payload: dict[str, Any]) -> None:
        """Take a slot for each member a message/send body names before it is sent; without
        room for all of them raise `Postponed` (nothing is taken)."""
        guides = recipients(str(payload.get("touser", "")))
        if not guides:
            return
        slot = await self.take(tenant, guides)
        if not slot.taken:
            assert slot.free_at is not None
            log.info("app message held tenant=%s guides=%s until=%s", tenant,
                     "|".join(guides), slot.free_at.isoformat())
            raise Postponed(slot.free_at, f"quota: app_msg_per_guide_per_min "
                            f"{self.limit(tenant)} used for {'|'.join(guides)}"[:200])

    async def send(self, client: WeComClient, tenant: str,
                   payload: dict[str, Any]) -> dict[str, Any]:
        """message/send within the budget: what every outbox executor of an app message to
        a guide does (`hold`, then the call; over the budget the outbox holds the message)."""
        await self.hold(tenant, payload)
        return await client.send_app_message(payload)

    async def take(self, tenant: str, guides: Sequence[str]) -> Slot:
        """One slot for each of these guides, all or none, in one write transaction."""
        now = self.clock()
        async with self._db.write() as s:
            found = await self._window(s, tenant, guides, now)
            limit = self.limit(tenant)
            full = [oldest for n, oldest in found.values() if n >= limit]
            if full:
                return Slot(False, max(full) + WINDOW)
            await self.record(s, tenant=tenant, guides=guides, now=now)
        return Slot(True)

    async def taken(self, session: AsyncSession, *, tenant: str, guides: Sequence[str],
                    now: datetime) -> Counter[str]:
        """In the caller's write transaction (the SOP dispatcher's): hold these guides'
        budgets until it ends and count their sends in the minute before `now`."""
        found = await self._window(session, tenant, guides, now)
        return Counter({g: n for g, (n, _) in found.items()})

    async def record(self, session: AsyncSession, *, tenant: str, guides: Sequence[str],
                     now: datetime) -> None:
        """Spend a slot per entry of `guides` at `now` (their budgets held by `taken` or
        `take` in this transaction), pruning their old rows."""
        if guides:
            await repo.prune(session, tenant=tenant, guides=guides, before=now - PRUNE_AFTER)
            await repo.record(session, tenant=tenant, guides=guides, at=now)

    async def _window(self, session: AsyncSession, tenant: str, guides: Sequence[str],
                      now: datetime) -> dict[str, tuple[int, datetime]]:
        await repo.lock_guides(session, tenant=tenant, guides=guides)
        return await repo.window(session, tenant=tenant, guides=guides, since=now - WINDOW,
                                 until=now + WINDOW)
