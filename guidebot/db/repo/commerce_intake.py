"""Queries for accepted order events: insert-if-new with what is stored for a replay, the
pending ones, and their results."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from guidebot.db.models_commerce import OrderEvent

Key = tuple[str, str, str]  # (tenant, kind, key)


class Stored(NamedTuple):
    digest: str
    body: str
    status: str
    result: str


def _insert(dialect: str) -> Any:
    table = OrderEvent.__table__  # type: ignore[attr-defined]
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (insert(table).on_conflict_do_nothing(index_elements=["tenant", "kind", "key"])
            .returning(table.c.tenant, table.c.kind, table.c.key))


def _stored(rows: Sequence[dict[str, Any]], new: set[Key]) -> Any:
    """The SELECT of what is stored for the rows that were not new (None: all were)."""
    table = OrderEvent.__table__  # type: ignore[attr-defined]
    old = [(r["tenant"], r["kind"], r["key"]) for r in rows
           if (r["tenant"], r["kind"], r["key"]) not in new]
    if not old:
        return None
    return (select(table.c.tenant, table.c.kind, table.c.key, table.c.digest, table.c.body,
                   table.c.status, table.c.result)
            .where(tuple_(table.c.tenant, table.c.kind, table.c.key).in_(old)))


def accept_sync(connection: Connection, *, rows: Sequence[dict[str, Any]]
                ) -> dict[Key, Stored]:
    """Insert the events whose (tenant, kind, key) is new; what is stored for the others.
    New events are absent from the answer. (The SQLite hot path: a synchronous connection.)"""
    new = {tuple(r) for r in connection.execute(_insert(connection.dialect.name),
                                                list(rows)).all()}
    query = _stored(rows, new)  # type: ignore[arg-type]
    if query is None:
        return {}
    return {(t, k, key): Stored(d, b, s, r)
            for t, k, key, d, b, s, r in connection.execute(query).all()}


async def accept(connection: AsyncConnection, *, rows: Sequence[dict[str, Any]]
                 ) -> dict[Key, Stored]:
    """accept_sync on an async connection."""
    new = {tuple(r) for r in (await connection.execute(_insert(connection.dialect.name),
                                                       list(rows))).all()}
    query = _stored(rows, new)  # type: ignore[arg-type]
    if query is None:
        return {}
    return {(t, k, key): Stored(d, b, s, r)
            for t, k, key, d, b, s, r in (await connection.execute(query)).all()}


class Pending(NamedTuple):
    id: int
    tenant: str
    kind: str
    key: str
    body: str
    received_at: datetime


_TABLE = OrderEvent.__table__  # type: ignore[attr-defined]
_PENDING = (select(_TABLE.c.id, _TABLE.c.tenant, _TABLE.c.kind, _TABLE.c.key, _TABLE.c.body,
                   _TABLE.c.received_at)
            .where(_TABLE.c.status == "pending").order_by(_TABLE.c.id)
            .limit(bindparam("limit")))


async def pending(session: AsyncSession, *, limit: int) -> list[Pending]:
    """Pending events in acceptance order (plain rows: the intake reads every one of a
    batch, and loading them as ORM objects cost as much as deciding them)."""
    connection = await session.connection()
    return [Pending(*row) for row in
            (await connection.execute(_PENDING, {"limit": limit})).all()]


async def still_pending(session: AsyncSession, *, ids: Sequence[int]) -> set[int]:
    """Which of `ids` are still pending (not taken by another process meanwhile)."""
    stmt = select(_TABLE.c.id).where(_TABLE.c.status == "pending",
                                     _TABLE.c.id.in_(list(ids)))
    return {int(i) for i in (await session.execute(stmt)).scalars()}


async def finish(session: AsyncSession, *, tenant: str, kind: str,
                 results: dict[str, tuple[str, str]], at: datetime) -> None:
    """Set (status, result JSON) of the tenant's events of `kind` by key."""
    if not results:
        return
    table = OrderEvent.__table__  # type: ignore[attr-defined]
    stmt = (update(table).where(table.c.tenant == tenant, table.c.kind == kind,
                                table.c.key == bindparam("k"))
            .values(status=bindparam("s"), result=bindparam("r"), done_at=at))
    await session.execute(stmt, [{"k": k, "s": s, "r": r} for k, (s, r) in results.items()])
