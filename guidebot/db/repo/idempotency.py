"""Queries for idempotency records of admin API creations."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models_api import IdempotencyRecord
from guidebot.db.repo._dialect import insert_for
from guidebot.db.types import utcnow


async def get(session: AsyncSession, *, tenant: str, scope: str,
              key: str) -> IdempotencyRecord | None:
    return await session.get(IdempotencyRecord, (tenant, scope, key))


async def put(session: AsyncSession, *, tenant: str, scope: str, key: str, digest: str,
              result: str) -> bool:
    """Record a result; False when the key is already recorded (the first one stays)."""
    stmt = (insert_for(session, IdempotencyRecord)
            .values(tenant=tenant, scope=scope, key=key, digest=digest, result=result,
                    created_at=utcnow())
            .on_conflict_do_nothing(index_elements=["tenant", "scope", "key"]))
    result_ = await session.execute(stmt)
    return bool(getattr(result_, "rowcount", 0))
