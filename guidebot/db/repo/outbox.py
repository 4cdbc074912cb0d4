"""Outbox queries: claim a key once, record attempts, find due retries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import OutboxItem
from guidebot.db.repo._dialect import insert_for
from guidebot.db.types import UTCDateTime, utcnow
from guidebot.db.writes import ByDialect, Write, execute

_TABLE = OutboxItem.__table__  # type: ignore[attr-defined]
# Built once: a welcome burst registers one row per add.
_INSERT_NEW = ByDialect({
    name: d.insert(_TABLE).on_conflict_do_nothing(index_elements=["tenant", "key"])
    .returning(_TABLE.c.tenant, _TABLE.c.key, _TABLE.c.id)
    for name, d in (("sqlite", sqlite), ("postgresql", postgresql))})


async def insert_if_new(session: AsyncSession, *, tenant: str, key: str, kind: str,
                        payload: str, due_at: datetime, deadline_at: datetime | None,
                        status: str = "sending", lease_owner: str = "",
                        lease_until: datetime | None = None) -> int | None:
    """The new row's id, or None when the key exists (the call was made or is owned)."""
    found = await insert_new(session, rows=[{
        "tenant": tenant, "key": key, "kind": kind, "payload": payload, "status": status,
        "due_at": due_at, "deadline_at": deadline_at, "lease_owner": lease_owner,
        "lease_until": lease_until}])
    return found.get((tenant, key))


async def insert_new(session: AsyncSession, *,
                     rows: Sequence[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """`insert_if_new` for many rows (its keyword arguments as dicts, distinct keys): the
    ids of the rows inserted, by (tenant, key); a key that existed is left out."""
    if not rows:
        return {}
    now = utcnow()
    params = [{"attempts": 0, "last_error": "", "result": "", "created_at": now,
               "updated_at": now, "status": "sending", "lease_owner": "", "lease_until": None,
               **row} for row in rows]
    result = await execute(session, _INSERT_NEW, params[0] if len(params) == 1 else params)
    return {(t, k): int(i) for t, k, i in result}


async def withdraw(session: AsyncSession, *, item_ids: Sequence[int]) -> None:
    """Forget registered rows never attempted (their call is not to be made)."""
    if item_ids:
        await session.execute(delete(OutboxItem).where(
            OutboxItem.id.in_(list(item_ids)), OutboxItem.attempts == 0,
            OutboxItem.status == "sending"))


async def end_leases(session: AsyncSession, *, now: datetime) -> int:
    """Every "sending" row is up for retry now (SQLite at start: one process, so whoever was
    sending is dead)."""
    result = await session.execute(update(OutboxItem).where(
        OutboxItem.status == "sending").values(lease_owner="", lease_until=now))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def record_attempt(session: AsyncSession, *, item_id: int, status: str, error: str = "",
                         result: str = "", due_at: datetime | None = None,
                         lease_owner: str = "", lease_until: datetime | None = None) -> None:
    values: dict[str, Any] = {"status": status, "last_error": error[:512], "result": result,
                              "attempts": OutboxItem.attempts + 1, "updated_at": utcnow(),
                              "lease_owner": lease_owner, "lease_until": lease_until}
    if due_at is not None:
        values["due_at"] = due_at
    await session.execute(update(OutboxItem).where(OutboxItem.id == item_id).values(**values))


async def postpone(session: AsyncSession, *, item_id: int, error: str,
                   due_at: datetime) -> None:
    """An attempt its executor put off without calling WeCom: failed and due at `due_at`,
    leased to nobody, its attempts unchanged."""
    await session.execute(update(OutboxItem).where(OutboxItem.id == item_id).values(
        status="failed", last_error=error[:512], due_at=due_at, updated_at=utcnow(),
        lease_owner="", lease_until=None))


_DONE = (update(OutboxItem.__table__)  # type: ignore[attr-defined]
         .where(OutboxItem.__table__.c.id == bindparam("item_id"))  # type: ignore[attr-defined]
         .values(status="done", last_error="", result=bindparam("result_json"),
                 attempts=OutboxItem.__table__.c.attempts + 1,  # type: ignore[attr-defined]
                 updated_at=bindparam("at", type_=UTCDateTime()), lease_owner="",
                 lease_until=None))


def done(*, item_id: int, result: str, at: datetime) -> Write:
    """record_attempt(status="done") as a deferred write, for recording a batch at once."""
    return Write(_DONE, {"item_id": item_id, "result_json": result, "at": at})


async def insert_many(session: AsyncSession, *, rows: Sequence[dict[str, Any]]) -> None:
    """New rows (the caller checked their keys are new, in its transaction)."""
    if rows:
        connection = await session.connection()
        stmt = insert_for(session, OutboxItem.__table__).on_conflict_do_nothing(  # type: ignore[attr-defined]
            index_elements=["tenant", "key"])
        await connection.execute(stmt, list(rows))


async def ids_by_key(session: AsyncSession, *, tenant: str,
                     keys: Sequence[str]) -> dict[str, int]:
    stmt = select(OutboxItem.key, OutboxItem.id).where(
        OutboxItem.tenant == tenant, OutboxItem.key.in_(list(keys)))  # type: ignore[attr-defined]
    return {key: int(i) for key, i in (await session.execute(stmt)).all()}


async def done_payloads(session: AsyncSession, *, tenant: str,
                        keys: Sequence[str]) -> dict[str, str]:
    """The payloads (JSON text) of the calls among `keys` that went out (status done)."""
    stmt = select(OutboxItem.key, OutboxItem.payload).where(
        OutboxItem.tenant == tenant, OutboxItem.status == "done",
        OutboxItem.key.in_(list(keys)))  # type: ignore[attr-defined]
    return {str(key): str(payload) for key, payload in (await session.execute(stmt)).all()}


def _retryable(now: datetime, stale_before: datetime) -> Any:
    due = (OutboxItem.status == "failed") & (OutboxItem.due_at <= now)
    sending = OutboxItem.status == "sending"
    lapsed = sending & OutboxItem.lease_until.is_not(None) & (OutboxItem.lease_until < now)
    stuck = sending & OutboxItem.lease_until.is_(None) & (OutboxItem.updated_at < stale_before)
    return due | lapsed | stuck  # type: ignore[operator]


async def any_due(session: AsyncSession, *, now: datetime, stale_before: datetime) -> bool:
    """Whether `claim_due` would find a row (a read that needs no writer)."""
    stmt = select(OutboxItem.id).where(_retryable(now, stale_before)).limit(1)
    return (await session.execute(stmt)).first() is not None


async def claim_due(session: AsyncSession, *, now: datetime, limit: int,
                    stale_before: datetime, owner: str,
                    lease_until: datetime) -> Sequence[OutboxItem]:
    """Rows to (re)try, leased to `owner`: failed and due; "sending" whose lease ran out (its
    process died); or "sending" without a lease (batched task calls) since `stale_before`."""
    stmt = (select(OutboxItem).where(_retryable(now, stale_before))
            .order_by(OutboxItem.id).limit(limit).with_for_update(skip_locked=True))
    items = list((await session.execute(stmt)).scalars())
    for item in items:
        item.status, item.updated_at = "sending", now
        item.lease_owner, item.lease_until = owner, lease_until
    return items


async def get_by_key(session: AsyncSession, *, tenant: str, key: str) -> OutboxItem | None:
    stmt = select(OutboxItem).where(OutboxItem.tenant == tenant, OutboxItem.key == key)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_items(session: AsyncSession, *, tenant: str, kind: str | None = None,
                     status: str | None = None, limit: int = 200) -> Sequence[OutboxItem]:
    stmt = select(OutboxItem).where(OutboxItem.tenant == tenant)
    if kind:
        stmt = stmt.where(OutboxItem.kind == kind)
    if status:
        stmt = stmt.where(OutboxItem.status == status)
    stmt = stmt.order_by(OutboxItem.id.desc()).limit(limit)  # type: ignore[union-attr]
    return list((await session.execute(stmt)).scalars())
