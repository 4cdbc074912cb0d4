"""A scheduled notice's sending once per period (a day, a week) for each tenant: one process
at a time (a PostgreSQL advisory lock; SQLite has one process) and the finished period
recorded (a job cursor), so a second run, a restart or another process does it once. The
notices themselves carry their own outbox keys, so a process dying half way resends none."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from guidebot.db.engine import Database
from guidebot.db.repo import sop_tasks as tasks_repo


class OncePerPeriod:
    def __init__(self, db: Database, cursor: str) -> None:
        self._db, self._cursor = db, cursor  # the cursor's name: the last period finished
        self._done: dict[str, str] = {}  # tenant → the last period seen finished (a cache)

    async def run(self, tenant_id: str, period: str,
                  send: Callable[[], Awaitable[int]]) -> int | None:
        """`send()` (how many it sent) unless `period` (ISO-ordered: a later one compares
        greater) is finished already or another process holds it (None then)."""
        if self._done.get(tenant_id) == period:
            return None
        async with tasks_repo.singleton(self._db.engine, f"{self._cursor}:{tenant_id}") as mine:
            if not mine:
                return None
            async with self._db.read() as s:
                last = await tasks_repo.get_cursor(s, tenant=tenant_id, name=self._cursor)
            if last and last >= period:
                self._done[tenant_id] = period
                return None
            sent = await send()
            async with self._db.write() as s:
                await tasks_repo.set_cursor(s, tenant=tenant_id, name=self._cursor, value=period)
        self._done[tenant_id] = period
        return sent
