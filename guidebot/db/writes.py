"""Deferred writes: a statement and its parameters, applied later in one transaction.

A repo function can return a Write instead of executing, so that a batch of calls records
its bookkeeping together: writes of the same statement object go in one executemany.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable


@dataclass(frozen=True)
class ByDialect:
    """A statement spelled per dialect (e.g. INSERT … ON CONFLICT DO NOTHING)."""

    variants: Mapping[str, Executable]


@dataclass(frozen=True)
class Write:
    """One row's worth of a module-level statement (keep the statement object shared)."""

    statement: Executable | ByDialect
    params: dict[str, Any]


async def apply(session: AsyncSession, writes: Iterable[Write]) -> None:
    """Execute the writes in order of their statements' first appearance, each statement
    once with all its parameter sets."""
    groups: dict[int, tuple[Executable | ByDialect, list[dict[str, Any]]]] = {}
    for write in writes:
        groups.setdefault(id(write.statement), (write.statement, []))[1].append(write.params)
    if not groups:
        return
    connection = await session.connection()
    for statement, params in groups.values():
        if isinstance(statement, ByDialect):
            statement = statement.variants[connection.dialect.name]
        await connection.execute(statement, params)


async def execute(session: AsyncSession, statement: Executable | ByDialect,
                  params: dict[str, Any]) -> Any:
    """Run a statement built once (module level) with one row's parameters on the session's
    connection, skipping the ORM's per-call work; its result."""
    connection = await session.connection()
    if isinstance(statement, ByDialect):
        statement = statement.variants[connection.dialect.name]
    return await connection.execute(statement, params)


async def execute_many(session: AsyncSession, statement: Executable | ByDialect,
                       rows: list[dict[str, Any]]) -> None:
    """`execute` with many rows' parameters (executemany); nothing for no rows."""
    if rows:
        connection = await session.connection()
        if isinstance(statement, ByDialect):
            statement = statement.variants[connection.dialect.name]
        await connection.execute(statement, rows)
