"""An inbox processor of its own on a migrated database, for tests that drive the inbox
directly (a `process` function of the test's instead of the app's handlers)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from guidebot.db.engine import Database
from guidebot.db.migrate import upgrade_async
from guidebot.db.models import InboxItem
from guidebot.inbox import InboxProcessor, InboxWriter

Process = Callable[[int, str, str], Awaitable[Any]]


@dataclass
class Inbox:
    db: Database
    processor: InboxProcessor
    writer: InboxWriter

    async def item(self, item_id: int) -> InboxItem:
        async with self.db.read() as s:
            return (await s.execute(select(InboxItem).where(
                InboxItem.id == item_id))).scalar_one()

    async def processed(self, count: int, *, polls: int = 3000) -> list[InboxItem]:
        """The processed items once there are `count` of them (polls are a hang guard, not
        a timing bound)."""
        rows: list[InboxItem] = []
        for _ in range(polls):
            async with self.db.read() as s:
                rows = list((await s.execute(select(InboxItem).where(
                    InboxItem.processed_at.is_not(None)))).scalars().all())  # type: ignore[union-attr]
            if len(rows) >= count:
                break
            await asyncio.sleep(0.01)
        return rows


@asynccontextmanager
async def inbox_on(db_url: str, process: Process, **options: Any) -> AsyncIterator[Inbox]:
    """A migrated database with an InboxProcessor (not started) running `process`; closed
    and disposed on exit."""
    await upgrade_async(db_url)
    db = Database(db_url)
    processor = InboxProcessor(db, process, **options)
    try:
        yield Inbox(db, processor, InboxWriter(db))
    finally:
        await processor.close()
        await db.dispose()
