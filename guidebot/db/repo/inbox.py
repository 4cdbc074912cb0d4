"""Inbox queries: insert-if-new by digest, mark processed, list unprocessed."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from guidebot.db.models import InboxItem

NewItem = tuple[str, str, str]  # (tenant, digest, payload)


@functools.cache
def _insert_statement(dialect: str) -> Any:
    table = InboxItem.__table__
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (insert(table).on_conflict_do_nothing(index_elements=["tenant", "digest"])
            .returning(table.c.id, table.c.tenant, table.c.digest))


# The SQLite hot path skips statement building altogether: one multi-row INSERT per chunk.
_SQLITE_ROW = "(?, ?, ?, ?, 0, '', '')"
_SQLITE_INSERT = ("INSERT INTO inbox (tenant, digest, payload, received_at, attempts, outcome, "
                  "last_error) VALUES {} ON CONFLICT (tenant, digest) DO NOTHING "
                  "RETURNING id, tenant, digest")
_SQLITE_CHUNK = 200


def _rows(items: Sequence[NewItem], received_at: datetime) -> list[dict[str, object]]:
    return [{"tenant": t, "digest": d, "payload": p, "received_at": received_at,
             "attempts": 0, "outcome": "", "last_error": ""} for t, d, p in items]


def insert_new_sync(connection: Connection, *, items: Sequence[NewItem],
                    received_at: datetime) -> dict[tuple[str, str], int]:
    """SQLite: insert items whose (tenant, digest) is new; {(tenant, digest): id} of those."""
    # The same text UTCDateTime stores: naive UTC with microseconds.
    at = received_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    inserted: dict[tuple[str, str], int] = {}
    for start in range(0, len(items), _SQLITE_CHUNK):
        chunk = items[start:start + _SQLITE_CHUNK]
        sql = _SQLITE_INSERT.format(", ".join([_SQLITE_ROW] * len(chunk)))
        params = tuple(v for t, d, p in chunk for v in (t, d, p, at))
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


async def mark_processed(
    session: AsyncSession, *, item_id: int, at: datetime, outcome: str, error: str = ""
) -> None:
    await session.execute(
        update(InboxItem).where(InboxItem.id == item_id).values(
            processed_at=at, outcome=outcome, last_error=error[:512],
            attempts=InboxItem.attempts + 1))


async def record_failure(session: AsyncSession, *, item_id: int, error: str) -> None:
    await session.execute(
        update(InboxItem).where(InboxItem.id == item_id).values(
            last_error=error[:512], attempts=InboxItem.attempts + 1))


async def list_unprocessed(
    session: AsyncSession, *, tenant: str | None = None, limit: int = 1000, after_id: int = 0
) -> list[InboxItem]:
    stmt = (select(InboxItem).where(InboxItem.processed_at.is_(None))  # type: ignore[union-attr]
            .where(InboxItem.id > after_id).order_by(InboxItem.id).limit(limit))  # type: ignore[arg-type, operator]
    if tenant is not None:
        stmt = stmt.where(InboxItem.tenant == tenant)
    return list((await session.execute(stmt)).scalars())


async def count(session: AsyncSession, *, tenant: str, processed: bool | None = None) -> int:
    stmt = select(func.count()).select_from(InboxItem).where(InboxItem.tenant == tenant)
    if processed is True:
        stmt = stmt.where(InboxItem.processed_at.is_not(None))  # type: ignore[union-attr]
    elif processed is False:
        stmt = stmt.where(InboxItem.processed_at.is_(None))  # type: ignore[union-attr]
    return int((await session.execute(stmt)).scalar_one())
