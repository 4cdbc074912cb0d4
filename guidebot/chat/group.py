"""Group commit for the kf reply path: the short transactions concurrent customers' replies
make at about the same time (a reply counted and claimed in the outbox, sent replies recorded)
run together in one transaction, so a burst pays for a few commits, not one per reply.

A body that fails takes its batch's transaction down with it: the batch is then run again one
body per transaction, so each caller gets its own result or its own error."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.engine import Database

T = TypeVar("T")
Body = Callable[[AsyncSession], Awaitable[Any]]
MAX_BATCH = 200


@dataclass
class _Waiting:
    body: Body
    future: asyncio.Future[Any]


class GroupWriter:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._waiting: list[_Waiting] = []
        self._flusher: asyncio.Task[None] | None = None

    async def run(self, body: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """`body(session)` inside a write transaction shared with other callers; its result
        once that transaction committed."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(body, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all())
        result: T = await future
        return result

    async def _flush_all(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            try:
                async with self._db.write() as session:
                    results = [await item.body(session) for item in batch]
            except Exception as exc:  # noqa: BLE001 - each body again on its own, below
                if len(batch) == 1:
                    if not batch[0].future.done():
                        batch[0].future.set_exception(exc)
                    continue
                for item in batch:
                    await self._alone(item)
                continue
            for item, result in zip(batch, results, strict=True):
                if not item.future.done():
                    item.future.set_result(result)

    async def _alone(self, item: _Waiting) -> None:
        try:
            async with self._db.write() as session:
                result = await item.body(session)
        except Exception as exc:  # noqa: BLE001 - the caller hears about it
            if not item.future.done():
                item.future.set_exception(exc)
            return
        if not item.future.done():
            item.future.set_result(result)
