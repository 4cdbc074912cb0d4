"""Queries for 获客助手: the tenant's last quota reading, its link codes, the links WeCom
said became unavailable or were deleted, and the adds through a code in a time range."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import AcquisitionQuota, ChannelCode, Follow


async def get_quota(session: AsyncSession, *, tenant: str) -> AcquisitionQuota | None:
    return await session.get(AcquisitionQuota, tenant)


async def save_quota(session: AsyncSession, *, tenant: str, total: int, balance: int,
                     quota_list: str, read_at: datetime) -> None:
    """The reading replaces the last one."""
    row = await session.get(AcquisitionQuota, tenant)
    if row is None:
        session.add(AcquisitionQuota(tenant=tenant, total=total, balance=balance,
                                     quota_list=quota_list, read_at=read_at))
        return
    row.total, row.balance, row.quota_list, row.read_at = total, balance, quota_list, read_at


async def live_links(session: AsyncSession, *, tenant: str) -> int:
    """The tenant's link codes HQ has not deleted (they draw on the quota)."""
    stmt = select(func.count()).select_from(ChannelCode).where(
        ChannelCode.tenant == tenant, ChannelCode.kind == "link",
        ChannelCode.config_id != "", ChannelCode.deleted_at.is_(None))  # type: ignore[union-attr]
    return int((await session.execute(stmt)).scalar_one())


async def mark_link(session: AsyncSession, *, tenant: str, link_id: str, status: str,
                    at: datetime) -> int | None:
    """The link code with this link_id marked with WeCom's word for it; its id, or None when
    no code of the tenant has that link_id."""
    stmt = select(ChannelCode.id).where(ChannelCode.tenant == tenant,
                                        ChannelCode.kind == "link",
                                        ChannelCode.config_id == link_id)
    code_id = (await session.execute(stmt)).scalars().first()
    if code_id is None:
        return None
    await session.execute(update(ChannelCode).where(ChannelCode.id == code_id).values(
        wecom_status=status, wecom_status_at=at))
    return int(code_id)


async def adds_between(session: AsyncSession, *, tenant: str, code_id: int, start: datetime,
                       end: datetime) -> int:
    """Relations added through the code in [start, end) (ix_follows_code_added)."""
    stmt = select(func.count()).select_from(Follow).where(
        Follow.tenant == tenant, Follow.channel_code_id == code_id,
        Follow.added_at >= start, Follow.added_at < end)  # type: ignore[operator]
    return int((await session.execute(stmt)).scalar_one())
