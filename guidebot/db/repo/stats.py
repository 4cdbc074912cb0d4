"""Queries for the daily statistics: reading the source tables past a watermark, adding to
the daily cells, and the aggregates the console and the metrics API show."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import ChannelCode, FollowEvent, Guide
from guidebot.db.models_commerce import LedgerEntry, Order
from guidebot.db.models_stats import (
    StatsCustomer,
    StatsDaily,
    StatsLayerAdds,
    StatsLayerBuyers,
    StatsOrderMark,
    StatsWatermark,
)
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
    stmt = select(*table.__table__.c).where(table.id > after_id)
    if tenant is not None:
        stmt = stmt.where(table.tenant == tenant)
    if upto is not None:
        stmt = stmt.where(table.id <= upto)
    return (await session.execute(stmt.order_by(table.id).limit(limit))).all()


async def rows_with_ids(session: AsyncSession, *, source: str,
                        ids: Sequence[int]) -> Sequence[Any]:
    table = SOURCES[source]
    stmt = select(*table.__table__.c).where(table.id.in_(list(ids))).order_by(table.id)
    return (await session.execute(stmt)).all()


def _unmarked(tenant: str) -> Any:
    marked = select(StatsOrderMark.order_no).where(StatsOrderMark.tenant == tenant,
                                                   StatsOrderMark.order_no == Order.order_no)
    return select(*Order.__table__.c).where(  # type: ignore[attr-defined]
        Order.tenant == tenant, ~marked.exists())


async def orders_after(session: AsyncSession, *, tenant: str, at: datetime | None, key: str,
                       limit: int) -> Sequence[Any]:
    """Orders not yet counted that arrived after (at, key), in (arrival, order_no) order."""
    stmt = _unmarked(tenant)
    if at is not None:
        stmt = stmt.where(Order.received_at >= at,
                          or_(Order.received_at > at, Order.order_no > key))
    stmt = stmt.order_by(Order.received_at, Order.order_no).limit(limit)
    return (await session.execute(stmt)).all()


async def orders_unmarked_between(session: AsyncSession, *, tenant: str, since: datetime,
                                  until: datetime, limit: int) -> Sequence[Any]:
    """Orders not yet counted that arrived in [since, until]: committed after later ones."""
    stmt = _unmarked(tenant).where(Order.received_at >= since, Order.received_at <= until)
    stmt = stmt.order_by(Order.received_at, Order.order_no).limit(limit)
    return (await session.execute(stmt)).all()


async def guide_stores(session: AsyncSession, *, tenant: str) -> dict[str, str]:
    stmt = select(Guide.userid, Guide.store_id).where(Guide.tenant == tenant)
    return {g: s or "" for g, s in (await session.execute(stmt)).all()}


async def code_stores(session: AsyncSession, *, tenant: str) -> dict[int, str]:
    stmt = select(ChannelCode.id, ChannelCode.store_id).where(ChannelCode.tenant == tenant)
    return {int(i): s or "" for i, s in (await session.execute(stmt)).all()}


async def add_daily(session: AsyncSession, *, tenant: str,
                    cells: Sequence[tuple[str, str, str, dict[str, int]]]) -> None:
    """Add each cell's counts (day, store, guide, counts) to its row, creating it at zero
    first: one statement for every cell."""
    if not cells:
        return
    stmt = insert_for(session, StatsDaily)
    table = StatsDaily.__table__  # type: ignore[attr-defined]
    stmt = stmt.on_conflict_do_update(
        index_elements=["tenant", "day", "store_id", "guide"],
        set_={name: table.c[name] + stmt.excluded[name] for name in COUNTS})
    await session.execute(stmt, [
        {"tenant": tenant, "day": day, "store_id": store, "guide": guide,
         **{name: counts.get(name, 0) for name in COUNTS}}
        for day, store, guide, counts in cells])


CUSTOMER_FACTS = ("first_added_at", "via_code", "following", "orders", "gmv_fen",
                  "first_order_no", "first_paid_at", "last_paid_at")


async def get_customers(session: AsyncSession, *, tenant: str,
                        external_userids: Sequence[str]) -> dict[str, Any]:
    """The stored facts (plain rows) of those of these customers seen before."""
    found: dict[str, Any] = {}
    wanted = sorted(set(external_userids))
    table = StatsCustomer.__table__  # type: ignore[attr-defined]
    for i in range(0, len(wanted), 500):
        stmt = select(*table.c).where(table.c.tenant == tenant,
                                      table.c.external_userid.in_(wanted[i:i + 500]))
        found.update({r.external_userid: r for r in (await session.execute(stmt)).all()})
    return found


async def put_customers(session: AsyncSession, *, tenant: str,
                        facts: Sequence[dict[str, Any]]) -> None:
    """Write customers' facts (external_userid and CUSTOMER_FACTS each): one statement."""
    if not facts:
        return
    stmt = insert_for(session, StatsCustomer)
    stmt = stmt.on_conflict_do_update(
        index_elements=["tenant", "external_userid"],
        set_={name: stmt.excluded[name] for name in CUSTOMER_FACTS})
    await session.execute(stmt, [{"tenant": tenant, **f} for f in facts])


async def get_mark(session: AsyncSession, *, tenant: str, order_no: str) -> StatsOrderMark | None:
    return await session.get(StatsOrderMark, (tenant, order_no))


async def get_marks(session: AsyncSession, *, tenant: str,
                    order_nos: Sequence[str]) -> dict[str, StatsOrderMark]:
    found: dict[str, StatsOrderMark] = {}
    wanted = sorted(set(order_nos))
    for i in range(0, len(wanted), 500):
        stmt = select(StatsOrderMark).where(
            StatsOrderMark.tenant == tenant,
            StatsOrderMark.order_no.in_(wanted[i:i + 500]))  # type: ignore[attr-defined]
        found.update({m.order_no: m for m in (await session.execute(stmt)).scalars()})
    return found


async def add_marks(session: AsyncSession, *, tenant: str,
                    marks: Sequence[tuple[str, str, str, str]]) -> None:
    """Orders counted: (order_no, day, store, guide) each."""
    if marks:
        await session.execute(insert_for(session, StatsOrderMark), [
            {"tenant": tenant, "order_no": no, "day": day, "store_id": store, "guide": guide}
            for no, day, store, guide in marks])


async def clear(session: AsyncSession, *, tenant: str) -> None:
    for table in (StatsDaily, StatsCustomer, StatsOrderMark, StatsWatermark, StatsLayerAdds,
                  StatsLayerBuyers):
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


async def add_layers(session: AsyncSession, *, tenant: str, adds: dict[Any, int],
                     buyers: dict[Any, int]) -> None:
    """Add customers to (or, negative, take them from) the layer cells (stats/layers.py)."""
    for table, keys, moves in ((StatsLayerAdds, ("add_day", "following", "tier"), adds),
                               (StatsLayerBuyers, ("paid_day", "add_day"), buyers)):
        rows = [{"tenant": tenant, **dict(zip(keys, cell, strict=True)), "customers": n}
                for cell, n in moves.items() if n]
        if not rows:
            continue
        stmt = insert_for(session, table)
        stmt = stmt.on_conflict_do_update(
            index_elements=["tenant", *keys],
            set_={"customers": table.__table__.c.customers + stmt.excluded.customers})
        await session.execute(stmt, rows)


async def layer_counts(session: AsyncSession, *, tenant: str, bounds: dict[str, str],
                       tiers: Sequence[str]) -> dict[str, int]:
    """Customers known by the range's end in each layer and value tier, and the base (known
    before its start), summed from the layer cells (definitions: stats/definitions)."""
    a = StatsLayerAdds
    known = a.add_day <= bounds["to"]

    def count(cond: Any) -> Any:
        return func.coalesce(func.sum(case((cond, a.customers), else_=0)), 0)

    columns = [count(a.following & (a.add_day >= bounds["new_from"])).label("new"),
               count(~a.following).label("lost"),
               func.coalesce(func.sum(a.customers), 0).label("known"),
               count(a.add_day < bounds["from"]).label("base"),
               *[count(a.tier == name).label(f"tier_{name}") for name in tiers]]
    row = (await session.execute(select(*columns).where(a.tenant == tenant, known))).one()
    out = {k: int(v) for k, v in row._mapping.items()}
    b = StatsLayerBuyers
    active = select(func.coalesce(func.sum(b.customers), 0)).where(
        b.tenant == tenant, b.paid_day >= bounds["active_from"],
        b.add_day < bounds["new_from"])
    out["active"] = int((await session.execute(active)).scalar_one())
    out["dormant"] = out["known"] - out["new"] - out["active"] - out["lost"]
    return out
