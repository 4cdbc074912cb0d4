"""Queries for channel codes (「联系我」 configs created by guidebot)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import ChannelCode


async def create(session: AsyncSession, *, code: ChannelCode) -> ChannelCode:
    session.add(code)
    await session.flush()
    return code


async def set_wecom_fields(session: AsyncSession, *, code_id: int, state: str, config_id: str,
                           qr_code: str) -> None:
    await session.execute(update(ChannelCode).where(ChannelCode.id == code_id).values(
        state=state, config_id=config_id, qr_code=qr_code))


async def get(session: AsyncSession, *, tenant: str, code_id: int) -> ChannelCode | None:
    code = await session.get(ChannelCode, code_id)
    return code if code is not None and code.tenant == tenant else None


async def list_for_tenant(session: AsyncSession, *, tenant: str) -> Sequence[ChannelCode]:
    stmt = (select(ChannelCode).where(ChannelCode.tenant == tenant)
            .order_by(ChannelCode.id))  # type: ignore[arg-type]
    return list((await session.execute(stmt)).scalars())


async def delete_unfinished(session: AsyncSession, *, code_id: int) -> None:
    code = await session.get(ChannelCode, code_id)
    if code is not None and not code.config_id:
        await session.delete(code)
