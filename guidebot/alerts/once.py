"""A scheduled notice's sending once per period (a day, a week) for each tenant: one process
at a time (a PostgreSQL advisory lock; SQLite has one process) and the finished period
recorded (a job cursor), so a second run, a restart or another process does it once. The
notices themselves carry their own outbox keys, so a process dying half way resends none:
`send_batch` registers a period's notices in one transaction, then sends the ones it claimed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

from guidebot.db.engine import Database
from guidebot.db.repo import sop_tasks as tasks_repo
from guidebot.outbox import Executor, Outbox, Prepared


class OncePerPeriod:
    def __init__(self, db: Database, cursor: str) -> None:
        self._db, self._cursor = db, cursor  # the cursor's name: the last period finished
        self._done: dict[str, str] = {}  # tenant → the last period seen finished (a cache)

    async def run(self, tenant_id: str, period: str,
                  send: Callable[[], Awaitable[int | None]]) -> int | None:
        """`send()` (how many it sent) unless `period` (ISO-ordered: a later one compares
        greater) is finished already or another process holds it (None then). A `send()`
        that answers None had nobody to send to: the period is not recorded as finished, so
        the next run tries again (None then too)."""
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
            if sent is None:
                return None
            async with self._db.write() as s:
                await tasks_repo.set_cursor(s, tenant=tenant_id, name=self._cursor, value=period)
        self._done[tenant_id] = period
        return sent


async def send_batch(db: Database, outbox: Outbox, send: Executor, *, tenant: str, kind: str,
                     rows: Sequence[tuple[str, dict[str, Any]]],
                     in_flight: int) -> list[tuple[str, str]]:
    """(outbox key, payload) rows of one kind registered in one transaction, then the ones
    this call claimed (a key that existed belongs to its row) sent `in_flight` at a time by
    `send`; (key, outcome status) of each sent. One the outbox could not send yet it
    retries, or holds while the member's budget is spent."""
    async with db.write() as s:
        claimed = await outbox.register_many(
            s, tenant=tenant, rows=[(key, kind, payload) for key, payload in rows])
    mine = [(key, payload) for key, payload in rows if key in claimed]
    outcomes = await outbox.attempt_many(
        [Prepared(claimed[key], tenant, kind, partial(send, tenant, payload))
         for key, payload in mine], in_flight=in_flight)
    return [(key, outcome.status) for (key, _), outcome in zip(mine, outcomes, strict=True)]
