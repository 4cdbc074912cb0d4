"""Queries for commission rule versions, orders and refunds."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from guidebot.db.models_commerce import Order, Refund, RuleVersion
from guidebot.db.repo._dialect import insert_for, is_postgres


async def latest_rules(session: AsyncSession, *, tenant: str) -> RuleVersion | None:
    stmt = (select(RuleVersion).where(RuleVersion.tenant == tenant)
            .order_by(RuleVersion.effective_at.desc(), RuleVersion.id.desc())  # type: ignore[attr-defined,union-attr]
            .limit(1))
    return (await session.execute(stmt)).scalar_one_or_none()


async def rules_at(session: AsyncSession, *, tenant: str, at: datetime) -> RuleVersion | None:
    """The version in force at `at`; before the first version, the first one."""
    base = select(RuleVersion).where(RuleVersion.tenant == tenant)
    stmt = (base.where(RuleVersion.effective_at <= at)  # type: ignore[arg-type]
            .order_by(RuleVersion.effective_at.desc(), RuleVersion.id.desc())  # type: ignore[attr-defined,union-attr]
            .limit(1))
    found = (await session.execute(stmt)).scalar_one_or_none()
    if found is not None:
        return found
    first = base.order_by(RuleVersion.effective_at, RuleVersion.id).limit(1)  # type: ignore[arg-type]
    return (await session.execute(first)).scalar_one_or_none()


async def add_rules(session: AsyncSession, *, tenant: str, config_hash: str, rules: str,
                    at: datetime) -> RuleVersion:
    version = RuleVersion(tenant=tenant, config_hash=config_hash, rules=rules, effective_at=at)
    session.add(version)
    await session.flush()
    return version


async def get_rules(session: AsyncSession, *, version_id: int) -> RuleVersion | None:
    return await session.get(RuleVersion, version_id)


async def insert_order(session: AsyncSession, *, values: dict[str, Any]) -> bool:
    """False when the order_no is already known (a replay)."""
    stmt = (insert_for(session, Order).values(**values)
            .on_conflict_do_nothing(index_elements=["tenant", "order_no"]))
    result = await session.execute(stmt)
    return bool(getattr(result, "rowcount", 0))


async def get_order(session: AsyncSession, *, tenant: str, order_no: str) -> Order | None:
    return await session.get(Order, (tenant, order_no))


async def orders_of(session: AsyncSession, *, tenant: str,
                    external_userid: str) -> Sequence[Order]:
    stmt = (select(Order).where(Order.tenant == tenant, Order.external_userid == external_userid)
            .order_by(Order.paid_at))  # type: ignore[arg-type]
    return list((await session.execute(stmt)).scalars())


async def credited_totals(session: AsyncSession, *, tenant: str, external_userids: Sequence[str]
                          ) -> dict[tuple[str, str], tuple[int, int]]:
    """(guide, external_userid) → (orders credited to that guide, their paid fen) for these
    customers (by ix_commerce_orders_customer_paid)."""
    if not external_userids:
        return {}
    stmt = (select(Order.guide, Order.external_userid, func.count(), func.sum(Order.amount_fen))
            .where(Order.tenant == tenant, Order.guide.is_not(None),  # type: ignore[union-attr]
                   Order.external_userid.in_(list(external_userids)))  # type: ignore[union-attr]
            .group_by(Order.guide, Order.external_userid))
    return {(g, e): (int(n), int(fen or 0))
            for g, e, n, fen in (await session.execute(stmt)).all()}


async def insert_refund(session: AsyncSession, *, values: dict[str, Any]) -> bool:
    stmt = (insert_for(session, Refund).values(**values)
            .on_conflict_do_nothing(index_elements=["tenant", "refund_no"]))
    result = await session.execute(stmt)
    return bool(getattr(result, "rowcount", 0))


async def refunds_of(session: AsyncSession, *, tenant: str, order_no: str,
                     status: str | None = None) -> Sequence[Refund]:
    stmt = select(Refund).where(Refund.tenant == tenant, Refund.order_no == order_no)
    if status:
        stmt = stmt.where(Refund.status == status)
    stmt = stmt.order_by(Refund.refunded_at, Refund.received_at)  # type: ignore[arg-type]
    return list((await session.execute(stmt)).scalars())


async def mark_applied(session: AsyncSession, *, tenant: str, refund_no: str, clawback_fen: int,
                       allocation: str, at: datetime) -> None:
    await session.execute(update(Refund).where(
        Refund.tenant == tenant, Refund.refund_no == refund_no, Refund.status == "held"
    ).values(status="applied", clawback_fen=clawback_fen, allocation=allocation, applied_at=at))


async def store_report(session: AsyncSession, *, tenant: str, start: datetime,
                       end: datetime) -> list[dict[str, Any]]:
    """Store-credited orders paid in [start, end): count and GMV per store."""
    stmt = (select(Order.credited_store, func.count(), func.sum(Order.amount_fen))
            .where(Order.tenant == tenant, Order.rule == "store",
                   Order.paid_at >= start, Order.paid_at < end)  # type: ignore[arg-type]
            .group_by(Order.credited_store).order_by(Order.credited_store))
    rows = (await session.execute(stmt)).all()
    return [{"store": s, "orders": int(n), "gmv_fen": int(g or 0)} for s, n, g in rows]


async def guide_totals(session: AsyncSession, *, tenant: str, start: datetime, end: datetime,
                       rules: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Orders paid in [start, end) credited to a guide by one of `rules`: guide → (orders,
    paid amount in fen, before refunds)."""
    stmt = (select(Order.guide, func.count(), func.sum(Order.amount_fen))
            .where(Order.tenant == tenant, Order.guide.is_not(None),  # type: ignore[union-attr]
                   Order.rule.in_(list(rules)),  # type: ignore[attr-defined]
                   Order.paid_at >= start, Order.paid_at < end)  # type: ignore[arg-type]
            .group_by(Order.guide))
    return {g: (int(n), int(fen or 0)) for g, n, fen in (await session.execute(stmt)).all()}


async def period_purchases(session: AsyncSession, *, tenant: str, start: datetime,
                           end: datetime) -> list[tuple[str | None, str | None, bool]]:
    """(guide, store, is a repurchase) of each order paid in [start, end). A repurchase is an
    order whose customer has an earlier order (by paid_at, then order_no, any period); an
    order without a known customer is a first purchase. The store is the credited store, else
    the order's own. Read per order through the customer index: the period's orders only."""
    earlier = aliased(Order)
    later_number = earlier.order_no < Order.order_no
    if is_postgres(session):  # compare order numbers as Python and SQLite do (code points)
        later_number = earlier.order_no.collate("C") < Order.order_no.collate("C")  # type: ignore[attr-defined]
    prior = exists().where(
        earlier.tenant == Order.tenant, earlier.external_userid == Order.external_userid,
        or_(earlier.paid_at < Order.paid_at,  # type: ignore[arg-type]
            and_(earlier.paid_at == Order.paid_at, later_number)))
    stmt = select(Order.guide,
                  func.coalesce(func.nullif(Order.credited_store, ""), Order.store_id),
                  and_(Order.external_userid.is_not(None), prior)  # type: ignore[union-attr]
                  ).where(Order.tenant == tenant, Order.paid_at >= start,  # type: ignore[arg-type]
                          Order.paid_at < end)  # type: ignore[arg-type]
    return [(g, store, bool(again)) for g, store, again in (await session.execute(stmt)).all()]
