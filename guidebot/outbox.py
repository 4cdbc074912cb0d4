"""The outbox: every side-effecting WeCom call runs under a unique key, at most once.

An executor that may not call WeCom yet (a guide's app message budget is used up:
guidebot/app_quota.py) raises `Postponed(until, reason)` instead of calling: its row is left
"failed", due at `until`, with `reason` as its last error and its attempts unchanged, so
`retry_due` runs it again then, as often as it takes, and never dead-letters it for that."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.backoff import OUTBOX_INLINE, OUTBOX_RETRY, Backoff
from guidebot.db.engine import Database
from guidebot.db.group_commit import GroupCommit
from guidebot.db.repo import outbox as outbox_repo
from guidebot.db.types import utcnow
from guidebot.db.writes import Write, apply
from guidebot.errors import GuidebotError, NoRelation, WeComApiError, WeComError

log = logging.getLogger(__name__)

_RETRYING: ContextVar[bool] = ContextVar("outbox_retrying", default=False)


def is_retry() -> bool:
    """True inside an executor run by `retry_due`: an earlier attempt may have reached WeCom
    (it failed, or its process died mid-call), so a call that creates something should first
    look for what that attempt made."""
    return _RETRYING.get()


class Postponed(GuidebotError):
    """Raised by an executor that did not call WeCom: not now, try again at `until` (an aware
    UTC time). `reason` (ids and numbers, never message text) becomes the row's last error;
    the attempt is not counted."""

    def __init__(self, until: datetime, reason: str) -> None:
        self.until = until
        self.reason = reason
        super().__init__(f"{reason} (until {until.isoformat()})")


@dataclass(frozen=True)
class Done:
    """An executor's result plus writes to make in the transaction that records it as done,
    so the call's bookkeeping costs no transaction of its own."""

    result: dict[str, Any]
    writes: Sequence[Write] = ()


@dataclass(frozen=True)
class Prepared:
    """A registered row's first attempt, ready to run (its executor's data already loaded)."""

    item_id: int
    tenant: str
    kind: str
    call: Callable[[], Awaitable[dict[str, Any] | Done]]


Executor = Callable[[str, dict[str, Any]], Awaitable["dict[str, Any] | Done"]]
# Runs a transaction body (e.g. guidebot/db/group_commit.py's SharedTransactions.run).
Recorder = Callable[[Callable[[AsyncSession], Awaitable[None]]], Awaitable[None]]


class CallStatus(StrEnum):
    """An outbox row's state, and what a run or attempt came to (`DUPLICATE`: the key was
    claimed before, its row owns the call)."""

    SENDING = "sending"
    DONE = "done"
    FAILED = "failed"      # retried by retry_due when due
    DEAD = "dead"          # not retryable, or out of attempts
    EXPIRED = "expired"    # its deadline passed (a welcome's 20 s)
    DUPLICATE = "duplicate"


def next_try_at(status: str, due_at: datetime | None) -> datetime | None:
    """When `retry_due` tries a row next: only a failed row waits for a try, at its due time.
    A dead (or expired) row keeps the due time of its last try, which is no next try: it is
    never tried again unless HQ puts it back (the console's retry: failed, due now)."""
    return due_at if status == CallStatus.FAILED else None


@dataclass(frozen=True)
class Outcome:
    status: CallStatus
    result: dict[str, Any] | None = None
    error: str = ""
    failure: type[WeComError] | None = None  # the error type of a failed call
    held_until: datetime | None = None  # an executor postponed the call (FAILED, due then)

    @property
    def no_relation(self) -> bool:
        """WeCom said the guide and the customer have no relation (NoRelation)."""
        return self.failure is not None and issubclass(self.failure, NoRelation)


LEASE_S = 10.0  # a row being sent is another process's to retry once its lease runs out
STALE_S = 300.0  # rows registered for a batch (no lease) are taken over after this


class Outbox:
    """Runs calls by key, at most once. A service making a call hands over its executor
    (`call(tenant, payload)` performs the WeCom call); retries of rows whose first attempt
    failed, or whose process died, take the executor of their kind from `calls`, the table
    the composition root builds from every service (so the outbox needs none of them)."""

    def __init__(self, db: Database, *, retry: Backoff = OUTBOX_RETRY,
                 inline: Backoff = OUTBOX_INLINE) -> None:
        self._db = db
        self._retry = retry
        self._inline = inline
        self._owner = f"{os.getpid()}:{secrets.token_hex(4)}"
        # A burst's calls register and finish together: one transaction each per batch.
        self._registrations: GroupCommit[dict[str, Any], int | None] = GroupCommit(
            self._register_batch, key=lambda row: (row["tenant"], row["key"]))
        self._finished: GroupCommit[Sequence[Write], None] = GroupCommit(self._finish_batch)

    async def _register_batch(self, rows: list[dict[str, Any]]) -> list[int | None]:
        async with self._db.write() as session:
            ids = await outbox_repo.insert_new(session, rows=rows)
        return [ids.get((row["tenant"], row["key"])) for row in rows]

    async def _finish_batch(self, batches: list[Sequence[Write]]) -> list[None]:
        async with self._db.write() as session:
            await apply(session, [w for writes in batches for w in writes])
        return [None] * len(batches)

    async def recover(self, calls: Mapping[str, Executor]) -> int:
        """At start on SQLite (one process): every row left "sending" was a dead process's
        call in flight; retry it now (a welcome interrupted by a crash still makes its
        window). PostgreSQL processes take over such rows when their leases run out."""
        if not self._db.is_sqlite:
            return 0
        async with self._db.write() as session:
            taken = await outbox_repo.end_leases(session, now=utcnow())
        if taken:
            await self.retry_due(calls)
        return taken

    def _lease(self) -> datetime:
        return utcnow() + timedelta(seconds=LEASE_S)

    async def run(self, *, tenant: str, key: str, kind: str, payload: dict[str, Any],
                  call: Executor, deadline: datetime | None = None,
                  until_deadline: bool = False) -> Outcome:
        """Claim `key` and execute now; a second call with the same key does nothing.

        With `until_deadline`, retryable failures are retried inline until the deadline
        (used for the 20 s welcome window); otherwise they are left for `retry_due`.
        """
        item_id = await self._registrations.submit({
            "tenant": tenant, "key": key, "kind": kind, "payload": json.dumps(payload),
            "due_at": utcnow(), "deadline_at": deadline, "lease_owner": self._owner,
            "lease_until": self._lease()})
        if item_id is None:
            return Outcome(CallStatus.DUPLICATE)
        if deadline is not None and utcnow() >= deadline:
            return await self._expire(item_id, "deadline passed before the first attempt")
        attempt = 0
        while True:
            attempt += 1
            outcome = await self._attempt(item_id, tenant, kind, payload, attempt, call,
                                          keep_lease=until_deadline)
            if (outcome.status is not CallStatus.FAILED or not until_deadline
                    or outcome.held_until is not None):
                return outcome
            wait = self._inline.delay(attempt)
            if deadline is None or utcnow() + timedelta(seconds=wait) >= deadline:
                return await self._expire(item_id, outcome.error)
            await asyncio.sleep(wait)  # leased for LEASE_S by the failure's own record

    async def register(self, session: AsyncSession, *, tenant: str, key: str, kind: str,
                       payload: dict[str, Any], leased: bool = False) -> int | None:
        """Claim `key` inside the caller's transaction (with the work it belongs to); run it
        with `attempt_many` or `attempt_in_order`. None: the key exists, its row owns the
        call. `leased`: held by this process like `run`'s rows (retried LEASE_S after a
        crash, not STALE_S)."""
        return await outbox_repo.insert_if_new(
            session, tenant=tenant, key=key, kind=kind, payload=json.dumps(payload),
            due_at=utcnow(), deadline_at=None, lease_owner=self._owner if leased else "",
            lease_until=self._lease() if leased else None)

    async def register_many(self, session: AsyncSession, *, tenant: str,
                            rows: Sequence[tuple[str, str, dict[str, Any]]]) -> dict[str, int]:
        """`register` for (key, kind, payload) rows at once; the ids of the keys now claimed
        by this call (a key that existed is left out: its row owns the call)."""
        if not rows:
            return {}
        keys = [key for key, _, _ in rows]
        before = await outbox_repo.ids_by_key(session, tenant=tenant, keys=keys)
        now = utcnow()
        await outbox_repo.insert_many(session, rows=[{
            "tenant": tenant, "key": key, "kind": kind, "payload": json.dumps(payload),
            "status": CallStatus.SENDING, "due_at": now, "created_at": now, "updated_at": now}
            for key, kind, payload in rows if key not in before])
        after = await outbox_repo.ids_by_key(session, tenant=tenant, keys=keys)
        return {k: i for k, i in after.items() if k not in before}


    async def retry_due(self, calls: Mapping[str, Executor], *, limit: int = 100) -> int:
        """Retry failed rows whose time has come (and rows stuck in "sending")."""
        now = utcnow()
        stale_before = now - timedelta(seconds=STALE_S)
        async with self._db.read() as session:  # most passes find nothing: no writer for them
            if not await outbox_repo.any_due(session, now=now, stale_before=stale_before):
                return 0
        async with self._db.write() as session:
            items = await outbox_repo.claim_due(
                session, now=now, limit=limit, stale_before=stale_before,
                owner=self._owner, lease_until=now + timedelta(seconds=LEASE_S))
        for item in items:
            assert item.id is not None
            if item.deadline_at is not None and item.deadline_at <= now:
                await self._expire(item.id, item.last_error or "deadline passed")
                continue
            token = _RETRYING.set(True)
            try:
                await self._attempt(item.id, item.tenant, item.kind, json.loads(item.payload),
                                    item.attempts + 1, calls[item.kind])
            finally:
                _RETRYING.reset(token)
        return len(items)

    async def _attempt(self, item_id: int, tenant: str, kind: str, payload: dict[str, Any],
                       attempt: int, call: Executor, *, keep_lease: bool = False) -> Outcome:
        try:
            answer = await call(tenant, payload)
        except WeComError as exc:
            return await self._failed(item_id, tenant, kind, attempt, exc,
                                      keep_lease=keep_lease)
        except Postponed as exc:
            return await self._postponed(item_id, tenant, kind, exc)
        done = answer if isinstance(answer, Done) else Done(answer)
        await self._finished.submit([*done.writes, _done_write(item_id, done)])
        return Outcome(CallStatus.DONE, done.result)

    async def attempt_many(self, prepared: Sequence[Prepared], *,
                           in_flight: int = 8) -> list[Outcome]:
        """First attempts of registered rows, `in_flight` calls at a time; every call that
        succeeded is recorded, with its writes, in one transaction (a process dying before it
        leaves the rows "sending": retry_due takes them over as retries)."""
        gate = asyncio.Semaphore(in_flight)

        async def one(item: Prepared) -> Done | WeComError | Postponed:
            async with gate:
                try:
                    answer = await item.call()
                except (WeComError, Postponed) as exc:
                    return exc
            return answer if isinstance(answer, Done) else Done(answer)

        answers = await asyncio.gather(*(one(p) for p in prepared))
        done = [(p, a) for p, a in zip(prepared, answers, strict=True) if isinstance(a, Done)]
        if done:
            async with self._db.write() as session:
                await apply(session, [w for p, a in done for w in (*a.writes,
                                                                    _done_write(p.item_id, a))])
        outcomes = []
        for item, answer in zip(prepared, answers, strict=True):
            if isinstance(answer, Done):
                outcomes.append(Outcome(CallStatus.DONE, answer.result))
            elif isinstance(answer, Postponed):
                outcomes.append(await self._postponed(item.item_id, item.tenant, item.kind,
                                                      answer))
            else:
                outcomes.append(await self._failed(item.item_id, item.tenant, item.kind, 1,
                                                   answer))
        return outcomes

    async def attempt_in_order(self, prepared: Sequence[Prepared], *,
                               record: Recorder | None = None) -> list[Outcome]:
        """First attempts of registered rows one after another, stopping at the first that
        fails (its outcome is the last one returned): the calls that succeeded are recorded,
        with their writes, in one transaction (`record` runs it, e.g. together with other
        callers'; by default one of its own), and the rows after a failure, never
        attempted, are withdrawn (deleted, as if never registered)."""
        done: list[tuple[Prepared, Done]] = []
        failure: tuple[Prepared, WeComError | Postponed] | None = None
        for item in prepared:
            try:
                answer = await item.call()
            except (WeComError, Postponed) as exc:
                failure = (item, exc)
                break
            done.append((item, answer if isinstance(answer, Done) else Done(answer)))
        # after the failed one (none are left when all were done)
        withdrawn = [p.item_id for p in prepared[len(done) + 1:]]
        async def recording(session: AsyncSession) -> None:
            await apply(session, [w for p, a in done for w in (*a.writes,
                                                                _done_write(p.item_id, a))])
            await outbox_repo.withdraw(session, item_ids=withdrawn)

        if done or withdrawn:
            if record is not None:
                await record(recording)
            else:
                async with self._db.write() as session:
                    await recording(session)
        outcomes = [Outcome(CallStatus.DONE, a.result) for _, a in done]
        if failure is not None:
            failed, error = failure
            outcomes.append(
                await self._postponed(failed.item_id, failed.tenant, failed.kind, error)
                if isinstance(error, Postponed)
                else await self._failed(failed.item_id, failed.tenant, failed.kind, 1, error))
        return outcomes

    async def _failed(self, item_id: int, tenant: str, kind: str, attempt: int,
                      exc: WeComError, *, keep_lease: bool = False) -> Outcome:
        """Record a failed attempt: dead when final; else failed and due for `retry_due`, or,
        while its caller retries it inline (`keep_lease`), still "sending" under our lease."""
        error = f"{type(exc).__name__}: errcode={exc.errcode}"
        final = not exc.retryable or attempt >= self._retry.attempts
        status = CallStatus.DEAD if final else CallStatus.FAILED
        due = None if final else utcnow() + timedelta(seconds=self._retry.delay(attempt))
        log.warning("outbox item %s tenant=%s kind=%s attempt %s: %s (%s)", item_id, tenant,
                    kind, attempt, error, status)
        inline = keep_lease and not final
        async with self._db.write() as session:
            await outbox_repo.record_attempt(
                session, item_id=item_id, status=CallStatus.SENDING if inline else status,
                error=error, due_at=due, lease_owner=self._owner if inline else "",
                lease_until=self._lease() if inline else None)
        if isinstance(exc, WeComApiError):
            return Outcome(status, {"errcode": exc.errcode}, error, type(exc))
        return Outcome(status, None, error, type(exc))

    async def _postponed(self, item_id: int, tenant: str, kind: str,
                         exc: Postponed) -> Outcome:
        """Record an attempt its executor postponed (no WeCom call was made): failed, due at
        `exc.until`, attempts unchanged, so it is retried then and never dead-lettered for it."""
        log.info("outbox item %s tenant=%s kind=%s held until %s: %s", item_id, tenant, kind,
                 exc.until.isoformat(), exc.reason)
        async with self._db.write() as session:
            await outbox_repo.postpone(session, item_id=item_id, error=exc.reason,
                                       due_at=exc.until)
        return Outcome(CallStatus.FAILED, None, exc.reason, held_until=exc.until)

    async def _expire(self, item_id: int, error: str) -> Outcome:
        async with self._db.write() as session:
            await outbox_repo.record_attempt(session, item_id=item_id,
                                             status=CallStatus.EXPIRED, error=error)
        return Outcome(CallStatus.EXPIRED, None, error)


def _done_write(item_id: int, done: Done) -> Write:
    return outbox_repo.done(item_id=item_id, result=json.dumps(done.result, ensure_ascii=False),
                            at=utcnow())
