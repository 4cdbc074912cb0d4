"""An inbox processor of its own on a migrated database, for tests that drive the inbox
directly (a `process` function of the test's instead of the app's handlers)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text

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

    async def refuse_updates(self, name: str, *, when: str) -> None:
        """A trigger `name` that makes the database refuse updates of inbox rows whose new
        values meet `when` (SQL over NEW), as a failing database would."""
        if self.db.is_sqlite:
            statements = [f"CREATE TRIGGER {name} BEFORE UPDATE ON inbox WHEN {when} "
                          f"BEGIN SELECT RAISE(ABORT, 'refused'); END"]
        else:
            statements = [f"CREATE FUNCTION {name}() RETURNS trigger AS $$ BEGIN "
                          f"RAISE EXCEPTION 'refused'; END $$ LANGUAGE plpgsql",
                          f"CREATE TRIGGER {name} BEFORE UPDATE ON inbox FOR EACH ROW "
                          f"WHEN ({when}) EXECUTE FUNCTION {name}()"]
        async with self.db.write() as s:
            for statement in statements:
                await s.execute(text(statement))

    async def allow_updates(self, name: str) -> None:
        """Drop the trigger refuse_updates made."""
        async with self.db.write() as s:
            await s.execute(text(f"DROP TRIGGER {name}"
                                 + ("" if self.db.is_sqlite else " ON inbox")))

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
