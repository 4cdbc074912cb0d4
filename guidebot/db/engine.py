"""The database handle: async engine, sessions, SQLite pragmas and the single-writer rule."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

from guidebot import lanes
from guidebot.db.inline import InlineSession

T = TypeVar("T")


class Database:
    """Owns the engine. On SQLite every write transaction runs under one lock (one writer)."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        if not self.is_sqlite:
            # No pre-ping: it costs a round trip per transaction, a third of a burst's
            # database time. A connection PostgreSQL dropped fails its statement once; the
            # pool then discards every connection older than the failure, and the inbox and
            # outbox retry the work that failed.
            kwargs.update(pool_size=10, max_overflow=10, pool_recycle=3600)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = PriorityLock()
        self._sync_engine: Engine | None = None
        self._inline_engine: Engine | None = None
        self._hot_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db-hot")

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        if self.is_sqlite and not lanes.off_loop():
            with self._inline().connect() as connection, Session(
                    bind=connection, expire_on_commit=False) as sync:
                yield cast(AsyncSession, InlineSession(sync))
            return
        async with self._sessions() as session:
            yield session

    @contextlib.asynccontextmanager
    async def write(self, *, urgent: bool = False) -> AsyncIterator[AsyncSession]:
        """A session whose transaction commits on success and rolls back on error.

        On SQLite (one writer) waiting writers go in by lane (guidebot/lanes.py): `urgent`
        ones (the inbox, which acks and claims depend on) first, then the urgent part of
        events, then follow-ups and jobs. A transaction runs inline on the loop's thread
        unless the task works off the loop (jobs, bulk work: guidebot/db/inline.py); an
        inline one wakes the next batch of waiting writers at once when it ends, so a
        handling task takes a turn (lanes.turn) before it goes on.
        """
        if not self.is_sqlite:
            async with self._sessions() as session, session.begin():
                yield session
            return
        lane = lanes.Lane.ACK if urgent else lanes.current()
        async with self._write_lock.hold(lane):
            if lanes.off_loop():
                async with self._sessions() as session, session.begin():
                    yield session
                return
            with self._inline().begin() as connection, Session(
                    bind=connection, expire_on_commit=False) as sync:
                yield cast(AsyncSession, InlineSession(sync))
                sync.flush()
        await lanes.turn()

    def _inline(self) -> Engine:
        """The synchronous engine of inline work (guidebot/db/inline.py), made on first use."""
        if self._inline_engine is None:
            # Never make the loop wait for a pooled connection: a task may hold one across
            # an await, and waiting here would block every task (overflow is unbounded).
            self._inline_engine = create_engine(
                self.url.replace("+aiosqlite", ""), connect_args={"check_same_thread": False},
                pool_size=16, max_overflow=-1)
            event.listen(self._inline_engine, "connect", _sqlite_pragmas)
        return self._inline_engine

    async def write_hot(self, work: Callable[[Connection], T],
                        awork: Callable[[AsyncConnection], Awaitable[T]], *,
                        on_loop: bool = False) -> T:
        """One urgent transaction on the hot path (what an acknowledgement waits for), in the
        first lane of the SQLite writer lock.

        On SQLite the whole transaction is `work` on a synchronous connection: `on_loop`, it
        runs inline on the loop's thread (the inbox insert: the lock is held a fraction of a
        millisecond, where a hop to a thread and back held it for a turn of a loop busy
        with handling, about 10 ms under a flood); otherwise in one hop to a dedicated
        thread, beside the loop (the order intake: at its peak the loop, busy with requests,
        is what runs out). Elsewhere it runs as `awork` on an async connection.
        """
        if not self.is_sqlite:
            async with self.engine.begin() as connection:
                return await awork(connection)
        async with self._write_lock.hold(lanes.Lane.ACK):
            if on_loop:
                with self._inline().begin() as connection:
                    return work(connection)
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._hot_thread, self._in_sync_txn, work)

    def _in_sync_txn(self, work: Callable[[Connection], T]) -> T:
        if self._sync_engine is None:
            self._sync_engine = create_engine(self.url.replace("+aiosqlite", ""))
            event.listen(self._sync_engine, "connect", _sqlite_pragmas)
        with self._sync_engine.begin() as connection:
            return work(connection)

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._sync_engine is not None:
            self._sync_engine.dispose()
        if self._inline_engine is not None:
            self._inline_engine.dispose()
        self._hot_thread.shutdown(wait=False)


class PriorityLock:
    """A lock with levels in which lower levels go first (0 before 1 before 2), FIFO within
    a level, cancellation-safe.

    A release wakes a batch of the first waiting level instead of handing ownership to one
    waiter: a woken waiter takes the lock if it is free when it runs, else queues again at the
    front. Inline SQLite writes (guidebot/db/inline.py) never suspend while they hold it, so
    the woken batch runs its transactions one after another in a single turn of the event
    loop. A strict hand-over would leave the lock idle for a whole turn of a busy loop (every
    ready task first) between two writers: under a burst that idle time, not SQLite, bounded
    the writes per second. New arrivals queue while woken waiters are pending."""

    WAKE_BATCH = 64

    def __init__(self, levels: int = len(lanes.Lane)) -> None:
        self._held = False
        self._woken = 0  # waiters told the lock was free that have not run yet
        self._requeued = [0] * levels  # woken waiters put back in front since the last wake
        self._queues: list[collections.deque[asyncio.Future[None]]] = [
            collections.deque() for _ in range(levels)]

    @contextlib.asynccontextmanager
    async def hold(self, level: int = lanes.Lane.NOW) -> AsyncIterator[None]:
        await self._acquire(level)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, level: int) -> None:
        if not self._held and not self._woken and not any(self._queues):
            self._held = True
            return
        queue = self._queues[level]
        front = False
        while True:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            if front:  # in the order they were woken
                queue.insert(self._requeued[level], waiter)
                self._requeued[level] += 1
            else:
                queue.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._woken -= 1
                    self._wake()  # woken just as we were cancelled: pass the wake-up on
                elif waiter in queue:
                    queue.remove(waiter)
                raise
            self._woken -= 1
            if not self._held:
                self._held = True
                return
            front = True  # another woken waiter went first and is still in: keep our place

    def _release(self) -> None:
        self._held = False
        self._wake()

    def _wake(self) -> None:
        if self._held:
            return
        for level, queue in enumerate(self._queues):
            woken = 0
            self._requeued[level] = 0
            while queue and woken < self.WAKE_BATCH:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    self._woken += 1
                    woken += 1
            if woken:
                return


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
