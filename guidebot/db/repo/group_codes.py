"""Queries for 群活码 (group_join_codes): the codes of a tenant, and the customers' joins
through each (group_customer_changes rows of change JOIN carrying the code's state)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models_groups import JOIN, GroupCustomerChange, GroupJoinCode


async def create(session: AsyncSession, *, code: GroupJoinCode) -> GroupJoinCode:
    session.add(code)
    await session.flush()
    return code


async def get(session: AsyncSession, *, tenant: str, code_id: int) -> GroupJoinCode | None:
    code = await session.get(GroupJoinCode, code_id)
    return code if code is not None and code.tenant == tenant else None


async def save(session: AsyncSession, *, code: GroupJoinCode) -> None:
    await session.merge(code)


async def delete_unfinished(session: AsyncSession, *, code_id: int) -> None:
    """A code WeCom refused to make: its row goes."""
    await session.execute(delete(GroupJoinCode).where(GroupJoinCode.id == code_id))


async def list_for_tenant(session: AsyncSession, *, tenant: str) -> Sequence[GroupJoinCode]:
    """The tenant's codes, newest first (deleted ones too: they keep what they brought)."""
    stmt = (select(GroupJoinCode).where(GroupJoinCode.tenant == tenant)
            .order_by(GroupJoinCode.id.desc()))  # type: ignore[union-attr]
    return list((await session.execute(stmt)).scalars())


@dataclass(frozen=True)
class Join:
    state: str
    chat_id: str
    external_userid: str
    at: datetime


async def joins(session: AsyncSession, *, tenant: str, states: Sequence[str],
                start: datetime, end: datetime) -> list[Join]:
    """Customers' joins in [start, end) through these states (each join, a customer who left
    and came back through a code counted each time), newest first; read by the change log's
    (tenant, change, at) index."""
    if not states:
        return []
    c = GroupCustomerChange
    stmt = (select(c.state, c.chat_id, c.external_userid, c.at)
            .where(c.tenant == tenant, c.change == JOIN,
                   c.at >= start, c.at < end,  # type: ignore[operator]
                   c.state.in_(list(states)))  # type: ignore[attr-defined]
            .order_by(c.at.desc(), c.id.desc()))  # type: ignore[attr-defined, union-attr]
    return [Join(str(s), str(ch), str(u), at)
            for s, ch, u, at in (await session.execute(stmt)).all()]
