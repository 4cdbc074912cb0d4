"""Monthly targets (业绩目标): a month's targets replaced at once, and read back."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import Guide, Store
from guidebot.db.models_targets import SalesTarget


async def replace(session: AsyncSession, *, tenant: str, period: str,
                  rows: Sequence[dict[str, Any]], now: datetime) -> None:
    """The month's targets become `rows` ({kind, subject, adds, gmv_fen} each)."""
    await session.execute(delete(SalesTarget).where(
        SalesTarget.tenant == tenant, SalesTarget.period == period))  # type: ignore[arg-type]
    if rows:
        await session.execute(insert(SalesTarget), [
            {"tenant": tenant, "period": period, "updated_at": now, **r} for r in rows])


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
