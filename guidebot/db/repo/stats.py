"""Queries for the daily statistics: reading the source tables past a watermark, adding to
the daily cells, and the aggregates the console and the metrics API show."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import ChannelCode, FollowEvent, Guide
from guidebot.db.models_commerce import LedgerEntry, Order
from guidebot.db.models_stats import StatsCustomer, StatsDaily, StatsOrderMark, StatsWatermark
from guidebot.db.repo._dialect import insert_for, is_postgres

COUNTS = ("adds_code", "adds_other", "deletions", "new_customers_code", "new_customers_other",
          "first_purchases", "repurchases", "orders", "gmv_fen", "orders_new", "gmv_new_fen",
          "orders_all", "gmv_all_fen", "commission_fen")


async def lock_tenant(session: AsyncSession, *, tenant: str) -> None:
    """One upkeep per tenant at a time across processes (SQLite has one writer anyway)."""
    if is_postgres(session):
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                              {"k": f"guidebot-stats:{tenant}"})


async def get_watermark(session: AsyncSession, *, tenant: str, source: str) -> StatsWatermark:
    found = await session.get(StatsWatermark, (tenant, source))
    if found is None:
        found = StatsWatermark(tenant=tenant, source=source)
        session.add(found)
    return found


SOURCES: dict[str, Any] = {"follow_events": FollowEvent, "ledger": LedgerEntry}


async def rows_after(session: AsyncSession, *, source: str, after_id: int, limit: int,
                     tenant: str | None = None, upto: int | None = None) -> Sequence[Any]:
    """Rows of a source table past an id, in id order (every tenant's unless one is named)."""
    table = SOURCES[source]
    stmt = select(table).where(table.id > after_id)
    if tenant is not None:
        stmt = stmt.where(table.tenant == tenant)
    if upto is not None:
        stmt = stmt.where(table.id <= upto)
    return (await session.execute(stmt.order_by(table.id).limit(limit))).scalars().all()


async def rows_with_ids(session: AsyncSession, *, source: str,
                        ids: Sequence[int]) -> Sequence[Any]:
    table = SOURCES[source]
    stmt = select(table).where(table.id.in_(list(ids))).order_by(table.id)
    return (await session.execute(stmt)).scalars().all()


async def orders_unmarked_since(session: AsyncSession, *, tenant: str, since: datetime | None,
                                limit: int) -> Sequence[Order]:
    marked = select(StatsOrderMark.order_no).where(StatsOrderMark.tenant == tenant,
                                                   StatsOrderMark.order_no == Order.order_no)
    stmt = select(Order).where(Order.tenant == tenant, ~marked.exists())
    if since is not None:
        stmt = stmt.where(Order.received_at >= since)
    stmt = stmt.order_by(Order.received_at, Order.order_no).limit(limit)
    return (await session.execute(stmt)).scalars().all()


async def guide_stores(session: AsyncSession, *, tenant: str) -> dict[str, str]:
    stmt = select(Guide.userid, Guide.store_id).where(Guide.tenant == tenant)
    return {g: s or "" for g, s in (await session.execute(stmt)).all()}


async def code_stores(session: AsyncSession, *, tenant: str) -> dict[int, str]:
    stmt = select(ChannelCode.id, ChannelCode.store_id).where(ChannelCode.tenant == tenant)
    return {int(i): s or "" for i, s in (await session.execute(stmt)).all()}


async def add_daily(session: AsyncSession, *, tenant: str, day: str, store_id: str, guide: str,
                    counts: dict[str, int]) -> None:
    """Add `counts` to one cell, creating it at zero first."""
    values = {name: counts.get(name, 0) for name in COUNTS}
    stmt = insert_for(session, StatsDaily).values(tenant=tenant, day=day, store_id=store_id,
                                                  guide=guide, **values)
    table = StatsDaily.__table__  # type: ignore[attr-defined]
    stmt = stmt.on_conflict_do_update(
        index_elements=["tenant", "day", "store_id", "guide"],
        set_={name: table.c[name] + stmt.excluded[name] for name in counts})
    await session.execute(stmt)


async def get_customer(session: AsyncSession, *, tenant: str,
                       external_userid: str) -> StatsCustomer:
    found = await session.get(StatsCustomer, (tenant, external_userid))
    if found is None:
        found = StatsCustomer(tenant=tenant, external_userid=external_userid)
        session.add(found)
    return found


async def get_mark(session: AsyncSession, *, tenant: str, order_no: str) -> StatsOrderMark | None:
    return await session.get(StatsOrderMark, (tenant, order_no))


async def add_mark(session: AsyncSession, *, mark: StatsOrderMark) -> None:
    session.add(mark)


async def clear(session: AsyncSession, *, tenant: str) -> None:
    for table in (StatsDaily, StatsCustomer, StatsOrderMark, StatsWatermark):
        await session.execute(delete(table).where(table.tenant == tenant))


def _sums() -> list[Any]:
    return [func.coalesce(func.sum(getattr(StatsDaily, name)), 0).label(name)
            for name in COUNTS]


async def per_day(session: AsyncSession, *, tenant: str, day_from: str,
                  day_to: str) -> list[dict[str, Any]]:
    stmt = (select(StatsDaily.day, *_sums())
            .where(StatsDaily.tenant == tenant, StatsDaily.day >= day_from,
                   StatsDaily.day <= day_to)
            .group_by(StatsDaily.day).order_by(StatsDaily.day))
    return [dict(row._mapping) for row in (await session.execute(stmt)).all()]


async def per_key(session: AsyncSession, *, tenant: str, day_from: str, day_to: str,
                  key: str) -> list[dict[str, Any]]:
    """Totals per guide or per store (key = "guide" | "store_id") over the days."""
    column = getattr(StatsDaily, key)
    stmt = (select(column.label("key"), *_sums())
            .where(StatsDaily.tenant == tenant, StatsDaily.day >= day_from,
                   StatsDaily.day <= day_to)
            .group_by(column))
    return [dict(row._mapping) for row in (await session.execute(stmt)).all()]


async def layer_counts(session: AsyncSession, *, tenant: str, start: datetime, end: datetime,
                       new_since: datetime, active_since: datetime,
                       tiers: Sequence[tuple[str, int]]) -> dict[str, int]:
    """Customers known by `end` in each layer and value tier (definitions: stats/definitions),
    and the base: those known before `start` (one pass over the table)."""
    c = StatsCustomer
    following = c.following > 0
    is_new = following & (c.first_added_at >= new_since)
    active = following & ~is_new & (c.last_paid_at >= active_since)
    lost = ~following

    def count(cond: Any) -> Any:
        return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)

    columns = [count(is_new).label("new"), count(active).label("active"),
               count(lost).label("lost"), func.count().label("known"),
               count(c.first_added_at < start).label("base")]
    tier_columns = []
    lower = None
    for name, floor in tiers:  # highest first
        cond = c.gmv_fen >= floor if lower is None else (c.gmv_fen >= floor) & (c.gmv_fen < lower)
        tier_columns.append(count(cond).label(f"tier_{name}"))
        lower = floor
    stmt = select(*columns, *tier_columns).where(
        c.tenant == tenant, c.first_added_at < end)
    row = (await session.execute(stmt)).one()
    out = {k: int(v) for k, v in row._mapping.items()}
    out["dormant"] = out["known"] - out["new"] - out["active"] - out["lost"]
    return out
