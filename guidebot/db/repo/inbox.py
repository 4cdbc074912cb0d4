"""Inbox queries: insert-if-new by digest, mark processed, list unprocessed."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from guidebot.db.models import InboxItem
from guidebot.db.types import UTCDateTime
from guidebot.db.writes import Write

NewItem = tuple[str, str, str, str]  # (tenant, digest, payload, order_key)


@functools.cache
def _insert_statement(dialect: str) -> Any:
    table = InboxItem.__table__
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (insert(table).on_conflict_do_nothing(index_elements=["tenant", "digest"])
            .returning(table.c.id, table.c.tenant, table.c.digest))


# The SQLite hot path skips statement building altogether: one multi-row INSERT per chunk.
_SQLITE_ROW = "(?, ?, ?, ?, ?, 0, '', '', '')"
_SQLITE_INSERT = ("INSERT INTO inbox (tenant, digest, payload, order_key, received_at, attempts, "
                  "outcome, last_error, lease_owner) VALUES {} ON CONFLICT (tenant, digest) "
                  "DO NOTHING RETURNING id, tenant, digest")
_SQLITE_CHUNK = 200


def _rows(items: Sequence[NewItem], received_at: datetime) -> list[dict[str, object]]:
    return [{"tenant": t, "digest": d, "payload": p, "order_key": k, "received_at": received_at,
             "attempts": 0, "outcome": "", "last_error": "", "lease_owner": ""}
            for t, d, p, k in items]


def insert_new_sync(connection: Connection, *, items: Sequence[NewItem],
                    received_at: datetime) -> dict[tuple[str, str], int]:
    """SQLite: insert items whose (tenant, digest) is new; {(tenant, digest): id} of those."""
    # The same text UTCDateTime stores: naive UTC with microseconds.
    at = received_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    inserted: dict[tuple[str, str], int] = {}
    for start in range(0, len(items), _SQLITE_CHUNK):
        chunk = items[start:start + _SQLITE_CHUNK]
        sql = _SQLITE_INSERT.format(", ".join([_SQLITE_ROW] * len(chunk)))
        params = tuple(v for t, d, p, k in chunk for v in (t, d, p, k, at))
        result = connection.exec_driver_sql(sql, params)
        inserted.update({(tenant, digest): row_id for row_id, tenant, digest in result})
    return inserted


async def insert_new(connection: AsyncConnection, *, items: Sequence[NewItem],
                     received_at: datetime) -> dict[tuple[str, str], int]:
    """The same as insert_new_sync on an async connection."""
    if not items:
        return {}
    rows = _rows(items, received_at)
    # One cached statement executed for many rows ("insertmanyvalues"): no per-batch compile.
    result = await connection.execute(_insert_statement(connection.dialect.name), rows)
    return {(tenant, digest): row_id for row_id, tenant, digest in result.all()}


async def count(session: AsyncSession, *, tenant: str, processed: bool | None = None) -> int:
    stmt = select(func.count()).select_from(InboxItem).where(InboxItem.tenant == tenant)
    if processed is True:
        stmt = stmt.where(InboxItem.processed_at.is_not(None))  # type: ignore[union-attr]
    elif processed is False:
        stmt = stmt.where(InboxItem.processed_at.is_(None))  # type: ignore[union-attr]
    return int((await session.execute(stmt)).scalar_one())


@dataclass(frozen=True)
class Claimed:
    id: int
    tenant: str
    payload: str
    attempts: int


# Pending, not leased (or its lease ran out), and the oldest pending item of its customer.
_CLAIMABLE = """
    SELECT i.id FROM inbox i
    WHERE i.processed_at IS NULL AND (i.lease_until IS NULL OR i.lease_until < :now)
      AND NOT EXISTS (SELECT 1 FROM inbox e WHERE e.processed_at IS NULL
                      AND e.tenant = i.tenant AND e.order_key = i.order_key
                      AND i.order_key != '' AND e.id < i.id)
    ORDER BY i.id LIMIT :limit {lock}
"""
_CLAIM = """
    UPDATE inbox SET lease_owner = :owner, lease_until = :until
    WHERE id IN ({claimable})
    RETURNING id, tenant, payload, attempts
"""


async def claim(session: AsyncSession, *, owner: str, now: datetime, until: datetime,
                limit: int) -> list[Claimed]:
    """Lease up to `limit` claimable items to `owner` until `until`, oldest first. On
    PostgreSQL concurrent claimers skip each other's locked rows (several processes)."""
    postgres = session.bind.dialect.name == "postgresql"
    claimable = _CLAIMABLE.format(lock="FOR UPDATE SKIP LOCKED" if postgres else "")
    result = await session.execute(text(_CLAIM.format(claimable=claimable)).bindparams(
        bindparam("now", type_=UTCDateTime()), bindparam("until", type_=UTCDateTime())),
        {"owner": owner, "now": now, "until": until, "limit": limit})
    rows = sorted(result.all())
    return [Claimed(int(i), str(t), str(p), int(a)) for i, t, p, a in rows]


async def renew(session: AsyncSession, *, owner: str, ids: Sequence[int],
                until: datetime) -> None:
    """Extend the leases `owner` holds on these items (it is still working on them)."""
    if ids:
        await session.execute(
            update(InboxItem).where(InboxItem.id.in_(list(ids)),  # type: ignore[attr-defined]
                                    InboxItem.lease_owner == owner,
                                    InboxItem.processed_at.is_(None))  # type: ignore[union-attr]
            .values(lease_until=until))


async def release_all(session: AsyncSession) -> int:
    """Every lease ends now (SQLite at start: one process, so every lease is a dead one's);
    retries keep their waiting time."""
    result = await session.execute(
        update(InboxItem).where(InboxItem.processed_at.is_(None),  # type: ignore[union-attr]
                                InboxItem.lease_owner != "").values(lease_owner="",
                                                                    lease_until=None))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


_FINISH = text("""
    UPDATE inbox SET processed_at = :at, outcome = :outcome, last_error = :error,
                     attempts = attempts + 1, lease_owner = '', lease_until = NULL
    WHERE id = :item_id
""").bindparams(bindparam("at", type_=UTCDateTime()))

_RETRY = text("""
    UPDATE inbox SET last_error = :error, attempts = attempts + 1, lease_owner = '',
                     lease_until = :retry_at
    WHERE id = :item_id
""").bindparams(bindparam("retry_at", type_=UTCDateTime()))


def finished(*, item_id: int, at: datetime, outcome: str, error: str = "") -> Write:
    """The item was handled (or failed for good): a deferred write for a batch."""
    return Write(_FINISH, {"item_id": item_id, "at": at, "outcome": outcome[:32],
                           "error": error[:512]})


def retry_later(*, item_id: int, error: str, retry_at: datetime) -> Write:
    """The item failed; it is claimable again at `retry_at` (by any process)."""
    return Write(_RETRY, {"item_id": item_id, "error": error[:512], "retry_at": retry_at})


async def pending(session: AsyncSession, *, owner: str, now: datetime) -> int:
    """Items not handled yet that this process holds or could claim (tests and the demo wait
    for none; another live process's leases are its own business)."""
    stmt = select(func.count()).select_from(InboxItem).where(
        InboxItem.processed_at.is_(None),  # type: ignore[union-attr]
        or_(InboxItem.lease_owner.in_(["", owner]),  # type: ignore[attr-defined]
            InboxItem.lease_until < now))  # type: ignore[operator]
    return int((await session.execute(stmt)).scalar_one())


async def list_unprocessed(session: AsyncSession, *, tenant: str | None = None,
                           limit: int = 1000) -> list[InboxItem]:
    stmt = (select(InboxItem).where(InboxItem.processed_at.is_(None))  # type: ignore[union-attr]
            .order_by(InboxItem.id).limit(limit))  # type: ignore[arg-type]
    if tenant is not None:
        stmt = stmt.where(InboxItem.tenant == tenant)
    return list((await session.execute(stmt)).scalars())
