"""Queries for tracked links, touches and unionid/openid → external_userid identities."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import Customer
from guidebot.db.models_commerce import Identity, Touch, TrackedLink
from guidebot.db.repo._dialect import insert_for
from guidebot.db.types import utcnow


async def add_link(session: AsyncSession, *, link: TrackedLink) -> None:
    session.add(link)


async def add_link_once(session: AsyncSession, *, link: TrackedLink) -> None:
    """Insert a link unless its token exists (concurrent sends of one stable link)."""
    values = {c: getattr(link, c) for c in ("token", "tenant", "guide", "sku", "page",
                                            "campaign", "customer", "created_at")}
    await session.execute(insert_for(session, TrackedLink).values(**values)
                          .on_conflict_do_nothing(index_elements=["token"]))


async def get_link(session: AsyncSession, *, tenant: str | None,
                   token: str) -> TrackedLink | None:
    """The link of a token; with `tenant`, only that tenant's."""
    link = await session.get(TrackedLink, token)
    return link if link is not None and tenant in (None, link.tenant) else None


async def add_touch(session: AsyncSession, *, touch: Touch) -> None:
    session.add(touch)


async def touches_between(session: AsyncSession, *, tenant: str, external_userid: str | None,
                          unionid: str | None, openid: str | None, start: datetime,
                          end: datetime) -> Sequence[Touch]:
    """Touches of one customer by any of their identifiers, with start <= at <= end."""
    who = []
    if external_userid:
        who.append(Touch.external_userid == external_userid)
    if unionid:
        who.append(Touch.unionid == unionid)
    if openid:
        who.append(Touch.openid == openid)
    if not who:
        return []
    stmt = select(Touch).where(Touch.tenant == tenant, or_(*who),
                               Touch.at >= start, Touch.at <= end)  # type: ignore[arg-type]
    return list((await session.execute(stmt)).scalars())


async def touches_of(session: AsyncSession, *, tenant: str,
                     external_userid: str) -> Sequence[Touch]:
    stmt = (select(Touch).where(Touch.tenant == tenant, Touch.external_userid == external_userid)
            .order_by(Touch.at))  # type: ignore[arg-type]
    return list((await session.execute(stmt)).scalars())


async def opens_of(session: AsyncSession, *, tenant: str, guide: str, external_userid: str,
                   start: datetime, end: datetime) -> int:
    """How often a customer opened a guide's cards with start < at <= end: their visits,
    and the anonymous clicks of links made for them alone (`TrackedLink.customer`)."""
    visits = select(func.count()).select_from(Touch).where(
        Touch.tenant == tenant, Touch.external_userid == external_userid,
        Touch.guide == guide, Touch.kind == "visit",
        Touch.at > start, Touch.at <= end)  # type: ignore[arg-type,operator]
    clicks = (select(func.count()).select_from(Touch)
              .join(TrackedLink, TrackedLink.token == Touch.token)  # type: ignore[arg-type]
              .where(Touch.tenant == tenant, Touch.external_userid.is_(None),  # type: ignore[union-attr]
                     Touch.guide == guide, Touch.kind == "click",
                     Touch.at > start, Touch.at <= end,  # type: ignore[arg-type,operator]
                     TrackedLink.customer == external_userid))
    return int((await session.execute(visits)).scalar_one()
               + (await session.execute(clicks)).scalar_one())


async def claim_touches(session: AsyncSession, *, tenant: str, external_userid: str,
                        unionid: str | None, openid: str | None) -> None:
    """Touches recorded under a unionid/openid only now belong to the resolved customer."""
    for column, value in ((Touch.unionid, unionid), (Touch.openid, openid)):
        if value:
            await session.execute(update(Touch).where(
                Touch.tenant == tenant, column == value,
                Touch.external_userid.is_(None))  # type: ignore[union-attr]
                .values(external_userid=external_userid))


async def remember_identity(session: AsyncSession, *, tenant: str, kind: str, value: str,
                            external_userid: str, source: str) -> None:
    stmt = insert_for(session, Identity).values(
        tenant=tenant, kind=kind, value=value, external_userid=external_userid, source=source,
        created_at=utcnow()).on_conflict_do_nothing(index_elements=["tenant", "kind", "value"])
    await session.execute(stmt)


async def lookup_identity(session: AsyncSession, *, tenant: str, kind: str,
                          value: str) -> str | None:
    found = await session.get(Identity, (tenant, kind, value))
    if found is not None:
        return found.external_userid
    if kind != "unionid":
        return None
    stmt = select(Customer.external_userid).where(Customer.tenant == tenant,
                                                  Customer.unionid == value).limit(1)
    return (await session.execute(stmt)).scalar_one_or_none()
