"""Group commit: concurrent callers' writes of one kind go to the database together.

Under a burst, hundreds of event tasks each want the same few statements (record an add,
register a welcome). One transaction per caller costs a BEGIN/COMMIT and, on PostgreSQL, a
network round trip per statement each; `GroupCommit` gathers what is submitted while a batch
is being written and writes it as the next batch, so the statements run once per batch
(executemany). A batch that fails is written again one item at a time, so one bad item fails
only its own caller.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from guidebot import lanes
from guidebot.db.engine import Database

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)


@dataclass
class _Waiting(Generic[T, R]):
    item: T
    future: asyncio.Future[R]
    lane: lanes.Lane
    off_loop: bool


class GroupCommit(Generic[T, R]):
    """`submit(item)` returns what `write(batch)` returned for that item, in order.

    `write` runs one transaction for the batch and returns one result per item. `key(item)`,
    when given, keeps two items with the same key out of one batch (the later one waits for
    the next), for writes that read what an earlier item of the same key wrote."""

    def __init__(self, write: Callable[[list[T]], Awaitable[list[R]]], *,
                 max_batch: int = 256, key: Callable[[T], Hashable] | None = None) -> None:
        self._write = write
        self._max_batch = max_batch
        self._key = key
        self._pending: list[_Waiting[T, R]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append(_Waiting(item, future, lanes.current(), lanes.off_loop()))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all())
        result = await future
        await lanes.turn()  # a batch's commit wakes all its callers at once (guidebot/lanes.py)
        return result

    def _next_batch(self) -> list[_Waiting[T, R]]:
        batch: list[_Waiting[T, R]] = []
        rest: list[_Waiting[T, R]] = []
        keys: set[Hashable] = set()
        for waiting in self._pending:
            if waiting.future.done():  # its caller was cancelled: nothing to write
                continue
            key = self._key(waiting.item) if self._key is not None else None
            if len(batch) >= self._max_batch or (key is not None and key in keys):
                rest.append(waiting)
                continue
            if key is not None:
                keys.add(key)
            batch.append(waiting)
        self._pending = rest
        return batch

    async def _flush_all(self) -> None:
        while self._pending:
            batch = self._next_batch()
            if batch:
                await self._flush(batch)

    async def _flush(self, batch: list[_Waiting[T, R]]) -> None:
        try:
            # In the most urgent lane among its callers: a welcome's write never waits as a
            # follow-up because a follow-up started the batch, nor goes off the loop because
            # a job did.
            with lanes.running_as(min(w.lane for w in batch),
                                  off_loop=all(w.off_loop for w in batch)):
                results = await self._write([w.item for w in batch])
        except Exception as exc:  # noqa: BLE001 - told to each caller below
            if len(batch) == 1:
                _settle(batch[0], exc=exc)
                return
            log.warning("a batch of %s writes failed (%s); writing them one by one",
                        len(batch), type(exc).__name__)
            for waiting in batch:
                await self._flush([waiting])
            return
        for waiting, result in zip(batch, results, strict=True):
            _settle(waiting, result=result)


def _settle(waiting: _Waiting[T, R], *, result: R | None = None,
            exc: BaseException | None = None) -> None:
    if waiting.future.done():
        return
    if exc is not None:
        waiting.future.set_exception(exc)
    else:
        waiting.future.set_result(result)  # type: ignore[arg-type]


Body = Callable[[AsyncSession], Awaitable[Any]]


class SharedTransactions:
    """Runs callers' transaction bodies together: `run(body)` calls `body(session)` inside a
    write transaction shared with the bodies submitted meanwhile (a GroupCommit of bodies), and
    returns its result once that transaction committed. A body that raises takes its batch's
    transaction down; the batch is then run one body per transaction."""

    def __init__(self, db: Database, *, max_batch: int = 200) -> None:
        self._db = db
        self._bodies: GroupCommit[Body, Any] = GroupCommit(self._run_batch, max_batch=max_batch)

    async def run(self, body: Callable[[AsyncSession], Awaitable[R]]) -> R:
        result: R = await self._bodies.submit(body)
        return result

    async def _run_batch(self, bodies: list[Body]) -> list[Any]:
        async with self._db.write() as session:
            return [await body(session) for body in bodies]
