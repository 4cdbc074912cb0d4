"""操作日志: HQ's changes recorded one insert each (the web layer calls `record` once a write
was answered), and read back newest first by a tenant's days, an actor and a cursor.

An entry holds the actor, the route (its method and path template, or a sign-in word), the
path's ids and the answer's status: never a request body, never a token. Recording never fails
the request it records: a failure is logged with an error id and the request goes on.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from guidebot.db.engine import Database
from guidebot.db.models_audit import AuditEntry
from guidebot.db.repo import audit as repo
from guidebot.settings import TenantSettings
from guidebot.stats import cursor

log = logging.getLogger(__name__)

TOKEN_ACTOR = "admin token"  # the tenant's admin token: the API, and the token sign-in
SIGN_IN = "sign_in"
SIGN_IN_REFUSED = "sign_in_refused"  # at most [server] signin_failures a window per address
SIGN_IN_THROTTLED = "sign_in_throttled"  # once a window: that address answered 429 since
SIGN_OUT = "sign_out"
PAGE = 100
CSV_FIELDS = ("at", "actor", "action", "params", "status")


@dataclass(frozen=True)
class Entry:
    id: int
    at: datetime
    actor: str
    action: str
    params: dict[str, str]
    status: int

    def row(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "actor": self.actor, "action": self.action,
                "params": self.params, "status": self.status}


@dataclass(frozen=True)
class AuditPage:
    entries: list[Entry]
    next: str | None  # the cursor of the next page; None on the last


class AuditLog:
    def __init__(self, db: Database, clock: Callable[[], datetime] | None = None) -> None:
        self._db = db
        self.clock = clock or (lambda: datetime.now(UTC))

    async def record(self, tenant: str, actor: str, action: str,
                     params: Mapping[str, str], status: int) -> None:
        """One entry; a failure is logged (with an error id), never raised."""
        entry = AuditEntry(tenant=tenant, at=self.clock(), actor=actor[:64],
                           action=action[:200], status=status,
                           params=json.dumps(dict(params), ensure_ascii=False,
                                             sort_keys=True))
        try:
            async with self._db.write() as s:
                await repo.add(s, entry)
        except Exception:  # noqa: BLE001 - the request it records has succeeded already
            log.exception("audit entry not recorded error_id=%s tenant=%s action=%s",
                          secrets.token_hex(6), tenant, action)

    async def page(self, tenant: TenantSettings, day_from: date, day_to: date, *,
                   actor: str = "", after: str = "", limit: int = PAGE) -> AuditPage:
        """The entries of the tenant's days day_from..day_to, newest first, `limit` a page
        (a bad cursor is refused: ValidationFailed list.bad_cursor)."""
        start, end = tenant.day_bounds(day_from, day_to)
        position = None
        if after:
            at, key = cursor.decode(after)
            if not key.isdigit():
                cursor.decode("")  # refused the same way
            position = (at, int(key))
        async with self._db.read() as s:
            rows = await repo.newest_first(s, tenant=tenant.id, start=start, end=end,
                                           actor=actor, after=position, limit=limit + 1)
        entries = [Entry(r.id or 0, r.at, r.actor, r.action, json.loads(r.params), r.status)
                   for r in rows[:limit]]
        more = len(rows) > limit
        return AuditPage(entries, cursor.encode(entries[-1].at, str(entries[-1].id))
                         if more else None)

    def export(self, tenant: TenantSettings, day_from: date, day_to: date, *,
               actor: str = "") -> AsyncIterator[str]:
        """The whole range as CSV (times in the tenant's zone with their offset; params as
        JSON)."""
        async def one_page(after: str) -> tuple[list[dict[str, Any]], str | None]:
            found = await self.page(tenant, day_from, day_to, actor=actor, after=after,
                                    limit=1000)
            return ([{**e.row(), "at": e.at.astimezone(tenant.tz).isoformat(),
                      "params": json.dumps(e.params, ensure_ascii=False)}
                     for e in found.entries], found.next)
        return cursor.csv_pages(CSV_FIELDS, one_page)
