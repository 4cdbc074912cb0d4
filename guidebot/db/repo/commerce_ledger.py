"""Queries for the append-only commission ledger and settled periods."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import case, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models_commerce import LedgerEntry, Settlement
from guidebot.db.repo._dialect import insert_for, is_postgres


async def lock_tenant(session: AsyncSession, *, tenant: str) -> None:
    """Serialize ledger writers of one tenant on PostgreSQL (SQLite has one writer anyway)."""
    if is_postgres(session):
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                              {"k": f"guidebot-ledger:{tenant}"})


async def append(session: AsyncSession, *, values: dict[str, Any]) -> bool:
    """Append one entry; False when its key already exists (never a second entry)."""
    stmt = (insert_for(session, LedgerEntry).values(**values)
            .on_conflict_do_nothing(index_elements=["tenant", "key"]))
    result = await session.execute(stmt)
    return bool(getattr(result, "rowcount", 0))


async def get_entry(session: AsyncSession, *, tenant: str, key: str) -> LedgerEntry | None:
    stmt = select(LedgerEntry).where(LedgerEntry.tenant == tenant, LedgerEntry.key == key)
    return (await session.execute(stmt)).scalar_one_or_none()


async def settled_periods(session: AsyncSession, *, tenant: str) -> set[str]:
    stmt = select(Settlement.period).where(Settlement.tenant == tenant)
    return set((await session.execute(stmt)).scalars())


async def get_settlement(session: AsyncSession, *, tenant: str,
                         period: str) -> Settlement | None:
    return await session.get(Settlement, (tenant, period))


async def settle(session: AsyncSession, *, settlement: Settlement) -> None:
    session.add(settlement)


async def statement_rows(session: AsyncSession, *, tenant: str,
                         period: str) -> list[dict[str, Any]]:
    amount = LedgerEntry.amount_fen

    def total(kind: str) -> Any:
        return func.coalesce(func.sum(case((LedgerEntry.kind == kind, amount), else_=0)), 0)

    orders = func.count(func.distinct(case((LedgerEntry.kind == "earn", LedgerEntry.order_no))))
    stmt = (select(LedgerEntry.guide, total("earn"), total("clawback"), total("adjustment"),
                   orders)
            .where(LedgerEntry.tenant == tenant, LedgerEntry.period == period)
            .group_by(LedgerEntry.guide).order_by(LedgerEntry.guide))
    rows = (await session.execute(stmt)).all()
    return [{"guide": g, "earned_fen": int(e), "clawback_fen": -int(c),
             "adjustment_fen": int(a), "orders": int(n)} for g, e, c, a, n in rows]


async def entries(session: AsyncSession, *, tenant: str, order_no: str | None = None,
                  period: str | None = None) -> Sequence[LedgerEntry]:
    stmt = select(LedgerEntry).where(LedgerEntry.tenant == tenant)
    if order_no is not None:
        stmt = stmt.where(LedgerEntry.order_no == order_no)
    if period is not None:
        stmt = stmt.where(LedgerEntry.period == period)
    stmt = stmt.order_by(LedgerEntry.id)  # type: ignore[arg-type]
    return list((await session.execute(stmt)).scalars())


