"""A sync that runs once per period across processes and restarts: the address book's and the
customer groups' daily syncs (contacts/directory.py, contacts/groups.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

from guidebot.db.engine import Database
from guidebot.db.repo import sop_tasks as job_state

T = TypeVar("T")


async def run_if_due(db: Database, tenant: str, *, lock: str, cursor: str, every: timedelta,
                     now: datetime, run: Callable[[str], Awaitable[T]]) -> T | None:
    """`run(tenant)` when the time recorded under `cursor` (which `run` records when it is
    done) is `every` or more ago, in one process at a time (PostgreSQL advisory lock `lock`).
    None: not due, or another process runs it."""
    async with job_state.singleton(db.engine, f"{lock}:{tenant}") as mine:
        if not mine:
            return None
        async with db.read() as s:
            last = await job_state.get_cursor(s, tenant=tenant, name=cursor)
        if last and now - datetime.fromisoformat(last) < every:
            return None
        return await run(tenant)
