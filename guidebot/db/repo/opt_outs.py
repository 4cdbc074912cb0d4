"""Customers who opted out: recorded once, read by SOP enrolment, and their active relations
(to tag) and enrolments (to end)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import Follow
from guidebot.db.models_kf import OptOut
from guidebot.db.repo._dialect import insert_for


async def record(session: AsyncSession, *, tenant: str, external_userid: str, msgid: str,
                 at: datetime) -> bool:
    """Record the opt-out; False when the customer had opted out before (kept as it was)."""
    table = OptOut.__table__
    stmt = (insert_for(session, table).values(tenant=tenant, external_userid=external_userid,
                                              msgid=msgid, opted_out_at=at, tag_id="")
            .on_conflict_do_nothing(index_elements=["tenant", "external_userid"])
            .returning(table.c.external_userid))  # type: ignore[attr-defined]
    return (await session.execute(stmt)).scalars().first() is not None


async def get(session: AsyncSession, *, tenant: str, external_userid: str) -> OptOut | None:
    return await session.get(OptOut, (tenant, external_userid))


async def set_tag(session: AsyncSession, *, tenant: str, external_userid: str,
                  tag_id: str) -> None:
    """The corp tag id the opt-out marked (kept for its undo)."""
    await session.execute(update(OptOut).where(
        OptOut.tenant == tenant, OptOut.external_userid == external_userid)  # type: ignore[arg-type]
        .values(tag_id=tag_id))


async def remove(session: AsyncSession, *, tenant: str,
                 external_userid: str) -> OptOut | None:
    """Forget the opt-out; the record forgotten (None when there was none)."""
    found = await session.get(OptOut, (tenant, external_userid))
    if found is None:
        return None
    gone = OptOut(tenant=found.tenant, external_userid=found.external_userid,
                  msgid=found.msgid, opted_out_at=found.opted_out_at, tag_id=found.tag_id)
    result = await session.execute(delete(OptOut).where(
        OptOut.tenant == tenant, OptOut.external_userid == external_userid))  # type: ignore[arg-type]
    return gone if result.rowcount else None  # type: ignore[attr-defined]


async def opted_out(session: AsyncSession, *, tenant: str, external_userid: str) -> bool:
    stmt = select(OptOut.external_userid).where(OptOut.tenant == tenant,
                                                OptOut.external_userid == external_userid)
    return (await session.execute(stmt)).scalars().first() is not None


async def opted_out_among(session: AsyncSession, *, tenant: str,
                          external_userids: list[str]) -> set[str]:
    """Those of these customers who opted out."""
    if not external_userids:
        return set()
    stmt = select(OptOut.external_userid).where(
        OptOut.tenant == tenant,
        OptOut.external_userid.in_(external_userids))  # type: ignore[attr-defined]
    return set((await session.execute(stmt)).scalars())


async def active_guides(session: AsyncSession, *, tenant: str,
                        external_userid: str) -> list[str]:
    """The guides the customer is an active contact of (the relations to tag)."""
    stmt = (select(Follow.guide).where(Follow.tenant == tenant,
                                       Follow.external_userid == external_userid,
                                       Follow.status == "active")
            .order_by(Follow.guide))  # type: ignore[arg-type]
    return list((await session.execute(stmt)).scalars())
