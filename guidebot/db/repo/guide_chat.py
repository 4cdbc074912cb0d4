"""Queries behind the guide commands in the app chat."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import Customer, Follow

LIVE = ("active", "half")


async def customers_of_guide(session: AsyncSession, *, tenant: str, guide: str, query: str,
                             limit: int = 20) -> list[Customer]:
    """The guide's own customers (a live follow) whose name or this guide's WeCom remark of
    them contains `query`, or whose external_userid is `query`; exact names first."""
    stmt = (select(Customer).join(Follow, (Follow.tenant == Customer.tenant)
                                  & (Follow.external_userid == Customer.external_userid))
            .where(Customer.tenant == tenant, Follow.guide == guide, Follow.status.in_(LIVE),
                   or_(Customer.name.contains(query, autoescape=True),
                       Follow.remark.contains(query, autoescape=True),  # type: ignore[attr-defined]
                       Customer.external_userid == query))
            .order_by(Customer.name, Customer.external_userid).limit(limit))
    found = list((await session.execute(stmt)).scalars())
    return sorted(found, key=lambda c: c.name != query)
