"""The durable inbox: group-committed dedup inserts; leased batch claims; outcomes recorded
in batches; failures retried from the database."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import secrets
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from guidebot import lanes
from guidebot.backoff import INBOX_RETRY, Backoff
from guidebot.db.engine import Database
from guidebot.db.repo import inbox as inbox_repo
from guidebot.db.types import utcnow
from guidebot.db.writes import Write, apply
from guidebot.events import INTERNAL_PREFIX, Event, encode_internal, internal_customer

log = logging.getLogger(__name__)



def payload_digest(plaintext: str) -> str:
    """Dedup key over the whole decrypted payload (FromUserName+CreateTime collides)."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


_XML_FIELD = r"<{0}>\s*(?:<!\[CDATA\[(.*?)\]\]>|([^<]*))\s*</{0}>"
_CUSTOMER = re.compile(_XML_FIELD.format("ExternalUserID"), re.S)
_SENDER = re.compile(_XML_FIELD.format("FromUserName"), re.S)


def order_key(payload: str) -> str:
    """Which items must be handled one after another, in arrival order: a customer's (add
    before edit before delete, an order before its refund), or an employee's own messages to
    the app; '' for the rest. Read off the raw payload, before parsing, on the ack path."""
    if payload.startswith(INTERNAL_PREFIX):
        customer = internal_customer(payload)
        return f"c:{customer}"[:160] if customer else ""
    found = _CUSTOMER.search(payload)
    if found and (found.group(1) or found.group(2)).strip():
        return f"c:{(found.group(1) or found.group(2)).strip()}"[:160]
    sender = _SENDER.search(payload)
    who = (sender.group(1) or sender.group(2) or "").strip() if sender else ""
    return f"u:{who}"[:160] if who and who != "sys" else ""


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
        items = [(t, d, p, order_key(p)) for (t, d), p in unique.items()]
        at = utcnow()
        return await self._db.write_hot(
            lambda conn: inbox_repo.insert_new_sync(conn, items=items, received_at=at),
            lambda conn: inbox_repo.insert_new(conn, items=items, received_at=at), on_loop=True)


Process = Callable[[int, str, str], Awaitable[str]]


CLOSE_TRIES, CLOSE_WAIT_S = 3, 5.0


@dataclass(frozen=True)
class InboxPolicy:
    """How the processor claims and retries. A failed item is tried `retry.attempts` times in
    all, waiting as `retry` says; a lease lasts `lease_s` and is renewed every `lease_s / 3`
    while its item is being handled."""

    batch: int = 200
    follow_ups: int = 16  # items past their urgent part (lanes.later) running at once
    steps_per_turn: int = 64  # handling steps let through per turn of the loop (lanes.Turns)
    steps_per_turn_acking: int = 4  # the same while callbacks wait for their acknowledgement
    retry: Backoff = INBOX_RETRY
    lease_s: float = 15.0
    poll_s: float = 0.25


class InboxProcessor:
    """Claims stored items in batches (leases, so several processes can share the inbox) and
    runs `process(item_id, tenant, payload)` for each in its own task, at most `workers` in
    their urgent part at a time and `policy.follow_ups` past it (guidebot/lanes.py), so a
    burst's welcomes do not queue behind its follow-ups; records outcomes in batches."""

    def __init__(self, db: Database, process: Process, *, workers: int = 256,
                 policy: InboxPolicy = InboxPolicy()) -> None:
        self._db = db
        self._process = process
        self._limit = workers
        self._policy = policy
        self.owner = f"{socket.gethostname()[:20]}:{os.getpid()}:{secrets.token_hex(3)}"
        self._wake = asyncio.Event()
        self._slots = asyncio.Event()
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self._urgent: set[int] = set()
        self._follow_ups = asyncio.Semaphore(policy.follow_ups)
        self._turns = lanes.Turns(policy.steps_per_turn, policy.steps_per_turn_acking)
        self._loops: list[asyncio.Task[None]] = []
        self._results: list[Write] = []
        self._flusher: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._limit > 0:
            self._loops = [asyncio.create_task(self._claim_loop(), name="inbox-claims"),
                           asyncio.create_task(self._renew_loop(), name="inbox-leases")]

    def acknowledging(self) -> contextlib.AbstractContextManager[None]:
        """Around storing a callback: while any is, handling lets the acknowledgements go
        first (fewer of its steps per turn of the loop, guidebot/lanes.py)."""
        return self._turns.acknowledging()

    def wake(self) -> None:
        """New items were stored: claim now instead of at the next poll."""
        self._wake.set()

    async def recover(self) -> int:
        """At start on SQLite (one process), the leases left by a dead process end now."""
        if not self._db.is_sqlite:
            return 0
        async with self._db.write() as session:
            return await inbox_repo.release_all(session)

    async def drain(self) -> None:
        """Wait until nothing this process holds or could claim is left unhandled (tests and
        the demo); items waiting for a retry are waited for."""
        while True:
            while self._in_flight or self._results or (self._flusher and not self._flusher.done()):
                await asyncio.sleep(0.01)
            async with self._db.read() as session:
                left = await inbox_repo.pending(session, owner=self.owner, now=utcnow())
            if not left and not self._in_flight:
                return
            self.wake()
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        """Cancel the claim loop and every item's task and wait for them; a task that swallowed
        its cancellation is cancelled again rather than waited for forever (a shutdown must
        end). Items cut short keep their lease until it runs out, then are claimed again."""
        pending = {*self._loops, *self._in_flight.values()}
        for _ in range(CLOSE_TRIES):
            for task in pending:
                task.cancel()
            if not pending:
                break
            _, pending = await asyncio.wait(pending, timeout=CLOSE_WAIT_S)
            if pending:
                log.warning("%s inbox task(s) still running after cancel; again", len(pending))
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        self._loops, self._in_flight = [], {}

    async def _claim_loop(self) -> None:
        while True:
            free = self._limit - len(self._urgent)
            if free <= 0:
                self._slots.clear()
                await self._slots.wait()
                continue
            try:
                claimed = await self._claim(min(free, self._policy.batch))
            except Exception:  # noqa: BLE001 - the loop must survive a database hiccup
                log.exception("inbox claim failed; trying again")
                claimed = []
                await asyncio.sleep(self._policy.poll_s)
            for item in claimed:
                self._urgent.add(item.id)
                self._in_flight[item.id] = asyncio.create_task(
                    self._handle(item), name=f"inbox-{item.id}")
            if len(claimed) < min(free, self._policy.batch):
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._policy.poll_s):
                        await self._wake.wait()

    async def _claim(self, limit: int) -> list[inbox_repo.Claimed]:
        now = utcnow()
        async with self._db.write(urgent=True) as session:
            return await inbox_repo.claim(
                session, owner=self.owner, now=now, limit=limit,
                until=now + timedelta(seconds=self._policy.lease_s))

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self._policy.lease_s / 3)
            if not self._in_flight:
                continue
            try:
                async with self._db.write() as session:
                    await inbox_repo.renew(
                        session, owner=self.owner, ids=list(self._in_flight),
                        until=utcnow() + timedelta(seconds=self._policy.lease_s))
            except Exception:  # noqa: BLE001 - a missed renewal is retried in lease_s / 3
                log.exception("inbox lease renewal failed")

    async def _handle(self, item: inbox_repo.Claimed) -> None:
        attempt = item.attempts + 1
        following = False

        async def follow_up() -> None:
            nonlocal following
            self._urgent.discard(item.id)
            self._slots.set()
            await self._follow_ups.acquire()
            following = True

        lanes.on_later(follow_up)
        lanes.take_turns(self._turns)
        try:
            await lanes.turn()  # a claim starts up to `policy.batch` items at once
            outcome = await self._process(item.id, item.tenant, item.payload)
            result = inbox_repo.finished(item_id=item.id, at=utcnow(), outcome=outcome)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - recorded on the row, retried, bounded
            result = self._failure(item, attempt, exc)
        finally:
            if following:
                self._follow_ups.release()
            self._urgent.discard(item.id)
            self._in_flight.pop(item.id, None)
            self._slots.set()
        self._results.append(result)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())

    def _failure(self, item: inbox_repo.Claimed, attempt: int, exc: Exception) -> Write:
        error = f"{type(exc).__name__}: {exc}"
        final = attempt >= self._policy.retry.attempts
        log.warning("inbox item %s tenant=%s attempt %s failed: %s%s", item.id, item.tenant,
                    attempt, type(exc).__name__, " (giving up)" if final else "",
                    exc_info=final)
        if final:
            return inbox_repo.finished(item_id=item.id, at=utcnow(), outcome="failed",
                                       error=error)
        delay = self._policy.retry.delay(attempt)
        return inbox_repo.retry_later(item_id=item.id, error=error,
                                      retry_at=utcnow() + timedelta(seconds=delay))

    async def _flush(self) -> None:
        """Group commit of outcomes: everything finished meanwhile goes in one transaction."""
        while self._results:
            batch, self._results = self._results, []
            try:
                async with self._db.write() as session:
                    await apply(session, batch)
            except Exception:  # noqa: BLE001 - the leases run out and the items come back
                log.exception("recording %s inbox outcomes failed", len(batch))


def internal_digest(key: str) -> str:
    """The dedup digest of an internal event's key (the same key is the same event)."""
    return hashlib.sha256(f"internal:{key}".encode()).hexdigest()


async def stage_many(session: AsyncSession, staged: Sequence[tuple[Event, str]]) -> int:
    """`stage` for many (event, key) pairs in one statement (a batch of orders); how many
    were new."""
    if not staged:
        return 0
    items = []
    for event, key in staged:
        payload = encode_internal(event)
        items.append((event.tenant, internal_digest(key), payload, order_key(payload)))
    connection = await session.connection()
    return len(await inbox_repo.insert_new(connection, items=items, received_at=utcnow()))


async def stage(session: AsyncSession, *, event: Event, key: str) -> bool:
    """Write an internal event into the inbox inside the caller's transaction (the one that
    makes the state change it describes), so it is handled exactly like a callback: after the
    commit, at least once, deduplicated by `key` (unique per tenant). False: `key` was staged
    before. The processor picks the row up on its next claim; call `InboxProcessor.wake()`
    after the commit to have it picked up at once."""
    return await stage_many(session, [(event, key)]) == 1
