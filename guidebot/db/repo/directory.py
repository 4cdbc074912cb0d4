"""Queries for what the address book tells about guides and stores (contacts/directory.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import Guide, Store
from guidebot.db.repo.contacts import ensure_guide


async def set_member(session: AsyncSession, *, tenant: str, userid: str, name: str,
                     store_id: str | None, wecom_status: int | None, active: bool,
                     at: datetime) -> None:
    """Create or update a guide from user/get. An empty name or store keeps the stored one."""
    await ensure_guide(session, tenant=tenant, userid=userid, store_id=store_id, name=name)
    await session.execute(update(Guide).where(Guide.tenant == tenant, Guide.userid == userid)
                          .values(active=active, wecom_status=wecom_status, directory_at=at))


async def mark_left(session: AsyncSession, *, tenant: str, userid: str, at: datetime,
                    wecom_status: int | None = None) -> bool:
    """The member left (or is unknown to WeCom): inactive, nothing deleted. False: no row."""
    result = await session.execute(
        update(Guide).where(Guide.tenant == tenant, Guide.userid == userid)
        .values(active=False, wecom_status=wecom_status, directory_at=at))
    return bool(getattr(result, "rowcount", 0))


async def guide_userids(session: AsyncSession, *, tenant: str) -> list[str]:
    stmt = select(Guide.userid).where(Guide.tenant == tenant).order_by(Guide.userid)
    return list((await session.execute(stmt)).scalars())


async def guides_active(session: AsyncSession, *, tenant: str) -> dict[str, bool]:
    """Every guide the tenant knows → whether they are still a member (False once they left)."""
    stmt = select(Guide.userid, Guide.active).where(Guide.tenant == tenant)
    return {userid: bool(active) for userid, active in await session.execute(stmt)}


async def active_guides(session: AsyncSession, *, tenant: str) -> list[str]:
    """Guides still members of the address book (a member who left is inactive)."""
    stmt = (select(Guide.userid).where(Guide.tenant == tenant, Guide.active.is_(True))  # type: ignore[attr-defined]
            .order_by(Guide.userid))
    return list((await session.execute(stmt)).scalars())


async def unnamed_guides(session: AsyncSession, *, tenant: str, limit: int = 50) -> list[str]:
    """Guides never looked up in the address book that still have no name."""
    stmt = (select(Guide.userid).where(
        Guide.tenant == tenant, Guide.name == "",
        Guide.directory_at.is_(None))  # type: ignore[union-attr]
        .order_by(Guide.userid).limit(limit))
    return list((await session.execute(stmt)).scalars())


async def store_names(session: AsyncSession, *, tenant: str,
                      store_ids: list[str]) -> dict[str, str]:
    stmt = select(Store.store_id, Store.name).where(
        Store.tenant == tenant, Store.store_id.in_(store_ids))  # type: ignore[attr-defined]
    return {sid: name for sid, name in (await session.execute(stmt)).all()}


async def rename_store(session: AsyncSession, *, tenant: str, store_id: str,
                       name: str) -> bool:
    """Rename an existing store; False when there is none (nothing is created)."""
    result = await session.execute(update(Store).where(
        Store.tenant == tenant, Store.store_id == store_id).values(name=name))
    return bool(getattr(result, "rowcount", 0))


async def mark_read(session: AsyncSession, *, tenant: str, userid: str, at: datetime) -> None:
    """The address book was asked about this guide (even if WeCom refused to tell)."""
    await session.execute(update(Guide).where(Guide.tenant == tenant, Guide.userid == userid)
                          .values(directory_at=at))
