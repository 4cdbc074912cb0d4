"""Access-token rows: read, upsert, compare-and-delete; and the database-backed TokenStore."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.engine import Database
from guidebot.db.models import AccessToken
from guidebot.db.types import utcnow


async def get_token(session: AsyncSession, *, tenant: str) -> AccessToken | None:
    return await session.get(AccessToken, tenant, populate_existing=True)


async def put_token(
    session: AsyncSession, *, tenant: str, token: str, expires_at: datetime
) -> None:
    """Insert or overwrite the tenant's token (last writer wins; WeCom tokens don't collide)."""
    values = {"tenant": tenant, "token": token, "expires_at": expires_at, "fetched_at": utcnow()}
    insert = _insert_for(session)
    stmt = insert(AccessToken).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["tenant"],
        set_={"token": token, "expires_at": expires_at, "fetched_at": values["fetched_at"]},
    )
    await session.execute(stmt)


async def delete_token_if(session: AsyncSession, *, tenant: str, token: str) -> bool:
    """Delete the tenant's token only if it is still `token`; True if a row went."""
    stmt = delete(AccessToken).where(
        AccessToken.tenant == tenant,  # type: ignore[arg-type]
        AccessToken.token == token,  # type: ignore[arg-type]
    )
    result: Any = await session.execute(stmt)
    return bool(result.rowcount)


def _insert_for(session: AsyncSession) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise NotImplementedError(f"no token upsert for dialect {dialect}")


class DbTokenStore:
    """TokenStore over the access_tokens table, so all guidebot processes share one token.

    A process remembers what it read for REMEMBER_S, so calls don't each cost a read. If
    another process replaced the token meanwhile (WeCom ended ours early), the first call
    with ours is rejected; the client then discards it, which forgets it here too, and the
    next read finds the other process's token: one failed call, never a second gettoken.
    """

    REMEMBER_S = 60.0

    def __init__(self, db: Database, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._db = db
        self._clock = clock
        self._seen: dict[str, tuple[tuple[str, datetime] | None, float]] = {}

    async def get(self, tenant_id: str) -> tuple[str, datetime] | None:
        seen = self._seen.get(tenant_id)
        if seen is not None and seen[0] is not None and self._clock() - seen[1] < self.REMEMBER_S:
            return seen[0]
        async with self._db.read() as session:
            row = await get_token(session, tenant=tenant_id)
            found = None if row is None else (row.token, row.expires_at)
        self._seen[tenant_id] = (found, self._clock())
        return found

    async def put(self, tenant_id: str, token: str, expires_at: datetime) -> None:
        async with self._db.write() as session:
            await put_token(session, tenant=tenant_id, token=token, expires_at=expires_at)
        self._seen[tenant_id] = ((token, expires_at), self._clock())

    async def invalidate(self, tenant_id: str, token: str) -> None:
        self._seen.pop(tenant_id, None)
        async with self._db.write() as session:
            await delete_token_if(session, tenant=tenant_id, token=token)
