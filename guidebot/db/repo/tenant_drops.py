"""Drops HQ created in the console or the admin API (新建群发): stored, listed, cancelled."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models_drops import TenantDrop
from guidebot.db.models_sop import SopCursor
from guidebot.db.repo._dialect import insert_for


async def insert(session: AsyncSession, *, tenant: str, drop_id: str, spec: str, at: datetime,
                 operator: str, now: datetime) -> bool:
    """Store a new drop; False when the id is taken (another creation won it)."""
    stmt = (insert_for(session, TenantDrop)
            .values(tenant=tenant, drop_id=drop_id, spec=spec, at=at, operator=operator,
                    created_at=now)
            .on_conflict_do_nothing(index_elements=["tenant", "drop_id"]))
    result = await session.execute(stmt)
    return bool(getattr(result, "rowcount", 0))


async def ids(session: AsyncSession, *, tenant: str) -> list[str]:
    stmt = select(TenantDrop.drop_id).where(TenantDrop.tenant == tenant)  # type: ignore[arg-type]
    return list((await session.execute(stmt)).scalars())


async def get(session: AsyncSession, *, tenant: str, drop_id: str) -> TenantDrop | None:
    return await session.get(TenantDrop, (tenant, drop_id))


async def of_tenant(session: AsyncSession, *, tenant: str, limit: int) -> list[TenantDrop]:
    """The tenant's drops, newest first (at the same time by number: an id is hq-<n>, so a
    longer one is the larger, and hq-10 comes before hq-9)."""
    stmt = (select(TenantDrop).where(TenantDrop.tenant == tenant)  # type: ignore[arg-type]
            .order_by(TenantDrop.created_at.desc(),  # type: ignore[attr-defined]
                      func.length(TenantDrop.drop_id).desc(),
                      TenantDrop.drop_id.desc())  # type: ignore[attr-defined]
            .limit(limit))
    return list((await session.execute(stmt)).scalars())


async def live(session: AsyncSession, *, tenant: str, since: datetime) -> list[TenantDrop]:
    """Drops not cancelled whose time is `since` or later (those a run may still fire)."""
    stmt = (select(TenantDrop)
            .where(TenantDrop.tenant == tenant,  # type: ignore[arg-type]
                   TenantDrop.cancelled_at.is_(None),  # type: ignore[union-attr]
                   TenantDrop.at >= since)  # type: ignore[arg-type]
            .order_by(TenantDrop.at, TenantDrop.drop_id))  # type: ignore[arg-type]
    return list((await session.execute(stmt)).scalars())


async def hold_live(session: AsyncSession, *, tenant: str, drop_id: str) -> bool:
    """Lock the drop's row unless it is cancelled (a write that changes nothing: a cancel
    waits for this transaction, and this one for a cancel under way); False when it is
    cancelled or gone."""
    return await _update_live(session, tenant, drop_id, None)


async def cancel(session: AsyncSession, *, tenant: str, drop_id: str, now: datetime) -> bool:
    """Mark the drop cancelled; False when it was already."""
    return await _update_live(session, tenant, drop_id, now)


async def _update_live(session: AsyncSession, tenant: str, drop_id: str,
                       cancelled_at: datetime | None) -> bool:
    """Set cancelled_at of the drop unless it is cancelled; False when it is (or is gone)."""
    stmt = (update(TenantDrop)
            .where(TenantDrop.tenant == tenant,  # type: ignore[arg-type]
                   TenantDrop.drop_id == drop_id,  # type: ignore[arg-type]
                   TenantDrop.cancelled_at.is_(None))  # type: ignore[union-attr]
            .values(cancelled_at=cancelled_at))
    result = await session.execute(stmt)
    return bool(getattr(result, "rowcount", 0))


async def cursors(session: AsyncSession, *, tenant: str,
                  names: Sequence[str]) -> dict[str, str]:
    """The drop schedules' cursors (drop:<id> → its last firing) of these names."""
    if not names:
        return {}
    stmt = select(SopCursor.name, SopCursor.value).where(
        SopCursor.tenant == tenant, SopCursor.name.in_(list(names)))  # type: ignore[arg-type,attr-defined]
    return {name: value for name, value in (await session.execute(stmt)).all()}
