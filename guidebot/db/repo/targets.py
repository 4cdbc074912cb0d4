"""Monthly targets (业绩目标): a month's targets replaced at once, and read back."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import Guide, Store
from guidebot.db.models_targets import SalesTarget
from guidebot.db.repo._dialect import insert_for


async def replace(session: AsyncSession, *, tenant: str, period: str,
                  rows: Sequence[dict[str, Any]], now: datetime) -> None:
    """The month's targets become `rows` ({kind, subject, adds, gmv_fen} each)."""
    await session.execute(delete(SalesTarget).where(
        SalesTarget.tenant == tenant, SalesTarget.period == period))  # type: ignore[arg-type]
    if rows:
        await session.execute(insert(SalesTarget), [
            {"tenant": tenant, "period": period, "updated_at": now, **r} for r in rows])


async def add_missing(session: AsyncSession, *, tenant: str, period: str,
                      rows: Sequence[dict[str, Any]], now: datetime) -> int:
    """Add `rows` ({kind, subject, adds, gmv_fen} each) to the month where it has no row for
    that guide or store; a row it has is kept as it is. Returns how many were added."""
    if not rows:
        return 0
    stmt = insert_for(session, SalesTarget.__table__)  # type: ignore[attr-defined]
    stmt = stmt.on_conflict_do_nothing(index_elements=["tenant", "period", "kind", "subject"])
    added = 0
    for row in rows:  # one at a time: rowcount counts the rows added
        result = await session.execute(stmt.values(tenant=tenant, period=period,
                                                   updated_at=now, **row))
        added += int(getattr(result, "rowcount", 0) or 0)
    return added


async def of_period(session: AsyncSession, *, tenant: str,
                    period: str) -> list[SalesTarget]:
    stmt = (select(SalesTarget)
            .where(SalesTarget.tenant == tenant,  # type: ignore[arg-type]
                   SalesTarget.period == period)  # type: ignore[arg-type]
            .order_by(SalesTarget.kind, SalesTarget.subject))  # type: ignore[arg-type]
    return list((await session.execute(stmt)).scalars())


async def known(session: AsyncSession, *, tenant: str) -> tuple[set[str], set[str]]:
    """The tenant's guide userids and store ids."""
    guides = select(Guide.userid).where(Guide.tenant == tenant)
    stores = select(Store.store_id).where(Store.tenant == tenant)
    return (set((await session.execute(guides)).scalars()),
            set((await session.execute(stores)).scalars()))
