"""The INSERT construct of the session's dialect (for ON CONFLICT on SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession


def _dialect(session: AsyncSession | AsyncConnection) -> str:
    bind = session.engine if isinstance(session, AsyncConnection) else session.bind
    return bind.dialect.name if bind is not None else "sqlite"


def insert_for(session: AsyncSession | AsyncConnection, table: Any) -> Any:
    if _dialect(session) == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def is_postgres(session: AsyncSession | AsyncConnection) -> bool:
    return _dialect(session) == "postgresql"
