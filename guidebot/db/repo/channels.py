"""Queries for channel codes (「联系我」 configs and 获客助手 links created by guidebot)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import ChannelCode, Follow


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


async def adds_per_code(session: AsyncSession, *, tenant: str) -> dict[int, tuple[int, int]]:
    """Per channel code: the relations it brought, and those still active."""
    stmt = (select(Follow.channel_code_id, func.count(),
                   func.sum(case((Follow.status == "active", 1), else_=0)))
            .where(Follow.tenant == tenant,
                   Follow.channel_code_id.is_not(None))  # type: ignore[union-attr]
            .group_by(Follow.channel_code_id))
    return {int(c): (int(n), int(a or 0)) for c, n, a in (await session.execute(stmt)).all()}


async def delete_unfinished(session: AsyncSession, *, code_id: int) -> None:
    code = await session.get(ChannelCode, code_id)
    if code is not None and not code.config_id:
        await session.delete(code)


async def limited(session: AsyncSession, *, tenant: str) -> list[ChannelCode]:
    """The tenant's QR codes with a daily add limit per guide."""
    stmt = (select(ChannelCode).where(ChannelCode.tenant == tenant, ChannelCode.daily_limit > 0,
                                      ChannelCode.config_id != "",
                                      ChannelCode.deleted_at.is_(None))  # type: ignore[union-attr]
            .order_by(ChannelCode.id))  # type: ignore[arg-type]
    return list((await session.execute(stmt)).scalars())


async def adds_since(session: AsyncSession, *, tenant: str, code_id: int,
                     since: datetime) -> dict[str, int]:
    """Per guide: customers added through the code since `since` (ix_follows_code_added)."""
    stmt = (select(Follow.guide, func.count())
            .where(Follow.tenant == tenant, Follow.channel_code_id == code_id,
                   Follow.added_at >= since)  # type: ignore[operator]
            .group_by(Follow.guide))
    return {str(g): int(n) for g, n in (await session.execute(stmt)).all()}


async def set_serving(session: AsyncSession, *, code_id: int, serving: Sequence[str],
                      day: str) -> None:
    await session.execute(update(ChannelCode).where(ChannelCode.id == code_id).values(
        serving=json.dumps(list(serving), ensure_ascii=False), serving_day=day))


async def inactive_among(session: AsyncSession, *, tenant: str,
                         userids: Sequence[str]) -> set[str]:
    """Those of `userids` the address book says left or were disabled."""
    from guidebot.db.models import Guide

    stmt = select(Guide.userid).where(Guide.tenant == tenant,
                                      Guide.userid.in_(list(userids)),  # type: ignore[attr-defined]
                                      Guide.active.is_(False))  # type: ignore[attr-defined]
    return {str(u) for u in (await session.execute(stmt)).scalars()}


# What HQ's edit changes; the rest (serving, serving_day, skip_verify_now, skip_verify_key)
# is the jobs' (ChannelRotation, ChannelAutoAccept), written by the edit only as `told`.
EDITED = ("guide", "guides", "backup_guides", "daily_limit", "store_id", "campaign", "tags",
          "welcome_message", "skip_verify", "auto_accept_hours")


async def save_edit(session: AsyncSession, *, code: ChannelCode, told: bool) -> None:
    """An edited code's own fields; with `told` (the edit just sent WeCom the code's body,
    in the code's turn), also what WeCom holds now: every guide serves (the rotation decides
    again) and skip_verify as sent."""
    values = {name: getattr(code, name) for name in EDITED}
    if told:
        values.update(serving="[]", serving_day="", skip_verify_now=code.skip_verify_now)
    await session.execute(update(ChannelCode).where(ChannelCode.id == code.id).values(**values))


async def mark_deleted(session: AsyncSession, *, code_id: int, at: datetime) -> None:
    await session.execute(update(ChannelCode).where(ChannelCode.id == code_id).values(
        deleted_at=at))


async def verify_windowed(session: AsyncSession, *, tenant: str) -> list[ChannelCode]:
    """The tenant's live codes whose skip_verify follows a window of the day, or whose
    skip_verify WeCom was last told differs from the code's own (自动通过好友)."""
    stmt = (select(ChannelCode)
            .where(ChannelCode.tenant == tenant, ChannelCode.config_id != "",
                   ChannelCode.deleted_at.is_(None),  # type: ignore[union-attr]
                   (ChannelCode.auto_accept_hours != "")
                   | (ChannelCode.skip_verify_now != ChannelCode.skip_verify))
            .order_by(ChannelCode.id))  # type: ignore[arg-type]
    return list((await session.execute(stmt)).scalars())


async def set_verify_key(session: AsyncSession, *, code_id: int, key: str) -> None:
    await session.execute(update(ChannelCode).where(ChannelCode.id == code_id).values(
        skip_verify_key=key))


async def set_verify_now(session: AsyncSession, *, code_id: int, skip_verify: bool) -> None:
    await session.execute(update(ChannelCode).where(ChannelCode.id == code_id).values(
        skip_verify_now=skip_verify))
