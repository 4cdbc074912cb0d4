"""Per-tenant usage figures over a UTC time range (the caller turns a month into one)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import Follow, FollowEvent, OutboxItem
from guidebot.db.models_commerce import Order
from guidebot.db.models_usage import LlmCall

GUIDE_RULES = ("share_link", "exclusive_guide")  # orders credited to a guide (DESIGN §5.4)


async def active_guides(session: AsyncSession, *, tenant: str, start: datetime,
                        end: datetime) -> int:
    """Guides with a customer relation open at some time in [start, end) (half-added
    relations, where only the customer added, not counted)."""
    stmt = select(func.count(func.distinct(Follow.guide))).where(
        Follow.tenant == tenant, Follow.status != "half", Follow.added_at < end,
        or_(Follow.ended_at.is_(None), Follow.ended_at >= start))
    return int((await session.execute(stmt)).scalar_one())


async def adds(session: AsyncSession, *, tenant: str, start: datetime,
               end: datetime) -> tuple[int, int]:
    """(distinct customers, relations) added in [start, end)."""
    stmt = select(func.count(func.distinct(FollowEvent.external_userid)), func.count()).where(
        FollowEvent.tenant == tenant, FollowEvent.action == "added",
        FollowEvent.at >= start, FollowEvent.at < end)
    customers, relations = (await session.execute(stmt)).one()
    return int(customers), int(relations)


async def done_calls_by_kind(session: AsyncSession, *, tenant: str, start: datetime,
                             end: datetime) -> dict[str, int]:
    """Outbox rows that finished (status done) in [start, end), counted per kind."""
    stmt = (select(OutboxItem.kind, func.count()).where(
        OutboxItem.tenant == tenant, OutboxItem.status == "done",
        OutboxItem.updated_at >= start, OutboxItem.updated_at < end)
        .group_by(OutboxItem.kind))
    return {str(kind): int(n) for kind, n in (await session.execute(stmt)).all()}


async def attributed_orders(session: AsyncSession, *, tenant: str, start: datetime,
                            end: datetime) -> tuple[int, int]:
    """(orders, paid amount in fen) paid in [start, end) and credited to a guide."""
    stmt = select(func.count(), func.coalesce(func.sum(Order.amount_fen), 0)).where(
        Order.tenant == tenant, Order.rule.in_(GUIDE_RULES),
        Order.paid_at >= start, Order.paid_at < end)
    orders, fen = (await session.execute(stmt)).one()
    return int(orders), int(fen)


async def record_llm_calls(session: AsyncSession, rows: list[dict[str, object]]) -> None:
    """LLM calls (tenant, at, purpose, model, prompt_tokens, completion_tokens), in one
    statement."""
    await session.execute(insert(LlmCall), rows)


async def llm_tokens(session: AsyncSession, *, tenant: str, start: datetime,
                     end: datetime) -> tuple[int, int, int]:
    """(calls, prompt tokens, completion tokens) of the tenant's LLM calls in [start, end)."""
    stmt = select(func.count(), func.coalesce(func.sum(LlmCall.prompt_tokens), 0),
                  func.coalesce(func.sum(LlmCall.completion_tokens), 0)).where(
        LlmCall.tenant == tenant, LlmCall.at >= start, LlmCall.at < end)
    calls, prompt, completion = (await session.execute(stmt)).one()
    return int(calls), int(prompt), int(completion)
