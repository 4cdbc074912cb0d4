"""The durable inbox: group-committed dedup inserts, tracked processing, replay at start."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.engine import Database
from guidebot.db.repo import inbox as inbox_repo
from guidebot.db.types import utcnow
from guidebot.events import Event, encode_internal

log = logging.getLogger(__name__)

def payload_digest(plaintext: str) -> str:
    """Dedup key over the whole decrypted payload (FromUserName+CreateTime collides)."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


@dataclass
class _Pending:
    tenant: str
    digest: str
    payload: str
    future: asyncio.Future[int | None]


class InboxWriter:
    """Collects concurrent inserts and commits them together: one transaction per batch."""

    def __init__(self, db: Database, *, max_batch: int = 500) -> None:
        self._db = db
        self._max_batch = max_batch
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, tenant: str, payload: str) -> int | None:
        """Durably store the payload; returns its new inbox id, or None for a duplicate."""
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(tenant, payload_digest(payload), payload, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all())
        return await future

    async def _flush_all(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            self._pending = self._pending[self._max_batch:]
            try:
                ids = await self._write(batch)
            except Exception as exc:  # noqa: BLE001 - every waiter must hear about it
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            for item in batch:
                if not item.future.done():
                    item.future.set_result(ids.pop((item.tenant, item.digest), None))

    async def _write(self, batch: list[_Pending]) -> dict[tuple[str, str], int]:
        unique = {(p.tenant, p.digest): p.payload for p in batch}
        items = [(t, d, p) for (t, d), p in unique.items()]
        at = utcnow()
        return await self._db.write_hot(
            lambda conn: inbox_repo.insert_new_sync(conn, items=items, received_at=at),
            lambda conn: inbox_repo.insert_new(conn, items=items, received_at=at))


Process = Callable[[int, str, str], Awaitable[str]]


CLOSE_TRIES, CLOSE_WAIT_S = 3, 5.0


class AckPressure:
    """Tracks callbacks in flight; processing yields to them so acks stay fast in a burst.

    Busy means more than `threshold` callbacks waiting for their inbox write now, or at any
    moment in the last `quiet_s` (in-flight counts dip between group commits, so an instant
    reading would let workers in mid-burst). Workers wait while busy, but never longer than
    `max_defer_s` per item — half of WeCom's 20 s welcome window — then go one at a time.
    """

    def __init__(self, threshold: int = 4, quiet_s: float = 0.5, max_defer_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self.quiet_s = quiet_s
        self.max_defer_s = max_defer_s
        self.in_flight = 0
        self._clock = clock
        self._busy_at = -quiet_s
        self._trickle = asyncio.Semaphore(1)

    def enter(self) -> None:
        self.in_flight += 1
        if self.in_flight > self.threshold:
            self._busy_at = self._clock()

    def leave(self) -> None:
        self.in_flight -= 1

    def busy(self) -> bool:
        return (self.in_flight > self.threshold
                or self._clock() - self._busy_at < self.quiet_s)

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Enter when quiet; under sustained pressure, one worker at a time after a delay."""
        deadline = self._clock() + self.max_defer_s
        while self.busy() and self._clock() < deadline:
            await asyncio.sleep(self.quiet_s / 2)
        if not self.busy():
            yield
            return
        async with self._trickle:
            yield


class InboxProcessor:
    """Runs `process(item_id, tenant, payload)` for stored items in tracked worker tasks."""

    def __init__(self, db: Database, process: Process, *, workers: int = 8,
                 max_attempts: int = 3, retry_delay_s: float = 1.0,
                 pressure: AckPressure | None = None) -> None:
        self.pressure = pressure or AckPressure()
        self._db = db
        self._process = process
        self._queue: asyncio.Queue[tuple[int, str, str, int]] = asyncio.Queue()
        self._workers_count = workers
        self._workers: list[asyncio.Task[None]] = []
        self._retries: set[asyncio.Task[None]] = set()
        self._max_attempts = max_attempts
        self._retry_delay_s = retry_delay_s

    def start(self) -> None:
        self._workers = [asyncio.create_task(self._work(), name=f"inbox-worker-{i}")
                         for i in range(self._workers_count)]

    def enqueue(self, item_id: int, tenant: str, payload: str, attempt: int = 1) -> None:
        self._queue.put_nowait((item_id, tenant, payload, attempt))

    async def replay(self) -> int:
        """Enqueue every stored item not yet processed (a crash between ack and work)."""
        replayed, after = 0, 0
        while True:
            async with self._db.read() as session:
                items = await inbox_repo.list_unprocessed(session, after_id=after)
            if not items:
                return replayed
            for item in items:
                assert item.id is not None
                self.enqueue(item.id, item.tenant, item.payload)
                after = item.id
            replayed += len(items)

    async def drain(self) -> None:
        """Wait until everything queued (and any pending retry) has been handled."""
        while True:
            await self._queue.join()
            if not self._retries:
                return
            await asyncio.gather(*self._retries, return_exceptions=True)

    async def close(self) -> None:
        """Cancel the workers and wait for them; a worker that swallowed its cancellation is
        cancelled again rather than waited for forever (a shutdown must end)."""
        pending = {*self._workers, *self._retries}
        for _ in range(CLOSE_TRIES):
            for task in pending:
                task.cancel()
            if not pending:
                break
            _, pending = await asyncio.wait(pending, timeout=CLOSE_WAIT_S)
            if pending:
                log.warning("%s inbox worker(s) still running after cancel; again",
                            len(pending))
        self._workers, self._retries = [], set()

    async def _work(self) -> None:
        while True:
            item_id, tenant, payload, attempt = await self._queue.get()
            try:
                async with self.pressure.turn():
                    await self._handle(item_id, tenant, payload, attempt)
            except Exception:  # noqa: BLE001 - a worker must survive anything
                log.exception("inbox item %s tenant=%s: bookkeeping failed", item_id, tenant)
            finally:
                self._queue.task_done()

    async def _handle(self, item_id: int, tenant: str, payload: str, attempt: int) -> None:
        try:
            outcome = await self._process(item_id, tenant, payload)
        except Exception as exc:  # noqa: BLE001 - recorded on the row, retried, bounded
            error = f"{type(exc).__name__}: {exc}"
            log.warning("inbox item %s tenant=%s attempt %s failed: %s", item_id, tenant,
                        attempt, type(exc).__name__, exc_info=attempt >= self._max_attempts)
            await self._after_failure(item_id, tenant, payload, attempt, error)
            return
        async with self._db.write() as session:
            await inbox_repo.mark_processed(session, item_id=item_id, at=utcnow(),
                                            outcome=outcome[:32])

    async def _after_failure(self, item_id: int, tenant: str, payload: str, attempt: int,
                             error: str) -> None:
        async with self._db.write() as session:
            if attempt >= self._max_attempts:
                await inbox_repo.mark_processed(session, item_id=item_id, at=utcnow(),
                                                outcome="failed", error=error)
                return
            await inbox_repo.record_failure(session, item_id=item_id, error=error)
        task = asyncio.create_task(self._retry_later(item_id, tenant, payload, attempt + 1))
        self._retries.add(task)
        task.add_done_callback(self._retries.discard)

    async def _retry_later(self, item_id: int, tenant: str, payload: str, attempt: int) -> None:
        await asyncio.sleep(self._retry_delay_s * 2 ** (attempt - 2))
        self.enqueue(item_id, tenant, payload, attempt)


async def stage(session: AsyncSession, *, event: Event, key: str) -> bool:
    """Write an internal event into the inbox inside the caller's transaction (the one that
    makes the state change it describes), so it is handled exactly like a callback: after the
    commit, at least once, deduplicated by `key` (unique per tenant). False: `key` was staged
    before. The processor picks the row up on its next claim; call `InboxProcessor.wake()`
    after the commit to have it picked up at once."""
    payload = encode_internal(event)
    digest = hashlib.sha256(f"internal:{key}".encode()).hexdigest()
    connection = await session.connection()
    inserted = await inbox_repo.insert_new(
        connection, items=[(event.tenant, digest, payload)], received_at=utcnow())
    return bool(inserted)
