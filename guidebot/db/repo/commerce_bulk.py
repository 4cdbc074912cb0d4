"""Set-based queries for bulk attribution: touches and bindings of a customer range, inserts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import Binding
from guidebot.db.models_commerce import LedgerEntry, Order, Refund, RuleVersion, Touch, TrackedLink
from guidebot.db.repo._dialect import is_postgres


async def widen_cache(session: AsyncSession) -> None:
    """SQLite's default 2 MB page cache makes random inserts into million-row indexes I/O
    bound; a bulk session's connection gets 128 MB (a per-connection setting)."""
    if not is_postgres(session):
        await session.execute(text("PRAGMA cache_size=-131072"))


async def touches_in_range(session: AsyncSession, *, tenant: str, first: str, last: str,
                           start: datetime, end: datetime) -> Sequence[Any]:
    """(external_userid, at, id, guide, token, kind) of customers first..last, by customer, at."""
    stmt = (select(Touch.external_userid, Touch.at, Touch.id, Touch.guide, Touch.token,
                   Touch.kind)
            .where(Touch.tenant == tenant, Touch.external_userid >= first,  # type: ignore[operator]
                   Touch.external_userid <= last,  # type: ignore[operator]
                   Touch.at >= start, Touch.at <= end)  # type: ignore[arg-type]
            .order_by(Touch.external_userid, Touch.at))  # type: ignore[arg-type]
    return (await session.execute(stmt)).all()


async def bindings_in_range(session: AsyncSession, *, tenant: str, first: str,
                            last: str) -> Sequence[Any]:
    stmt = (select(Binding.external_userid, Binding.guide, Binding.started_at, Binding.ended_at,
                   Binding.end_reason, Binding.id)
            .where(Binding.tenant == tenant, Binding.external_userid >= first,
                   Binding.external_userid <= last))
    return (await session.execute(stmt)).all()


async def links_by_token(session: AsyncSession, *, tenant: str,
                         tokens: Sequence[str]) -> dict[str, TrackedLink]:
    if not tokens:
        return {}
    stmt = select(TrackedLink).where(TrackedLink.tenant == tenant,
                                     TrackedLink.token.in_(tokens))  # type: ignore[attr-defined]
    return {link.token: link for link in (await session.execute(stmt)).scalars()}


async def known_orders(session: AsyncSession, *, tenant: str,
                       order_nos: Sequence[str]) -> set[str]:
    stmt = select(Order.order_no).where(Order.tenant == tenant,
                                        Order.order_no.in_(order_nos))  # type: ignore[attr-defined]
    return set((await session.execute(stmt)).scalars())


async def held_refund_orders(session: AsyncSession, *, tenant: str,
                             order_nos: Sequence[str]) -> set[str]:
    stmt = select(Refund.order_no).where(Refund.tenant == tenant, Refund.status == "held",
                                         Refund.order_no.in_(order_nos))  # type: ignore[attr-defined]
    return set((await session.execute(stmt)).scalars())


async def rule_versions(session: AsyncSession, *, tenant: str) -> Sequence[RuleVersion]:
    stmt = (select(RuleVersion).where(RuleVersion.tenant == tenant)
            .order_by(RuleVersion.effective_at, RuleVersion.id))  # type: ignore[arg-type]
    return list((await session.execute(stmt)).scalars())


async def insert_rows(session: AsyncSession, *, orders: list[dict[str, Any]],
                      touches: list[dict[str, Any]], entries: list[dict[str, Any]]) -> None:
    """Plain multi-row inserts (the caller has excluded known order numbers)."""
    connection = await session.connection()
    for table, rows in ((Order, orders), (Touch, touches), (LedgerEntry, entries)):
        if rows:  # Core executemany: no ORM unit of work for 10⁴ rows
            await connection.execute(insert(table.__table__), rows)  # type: ignore[attr-defined]
