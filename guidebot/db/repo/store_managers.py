"""Store managers from the address book: each department's `department_leader` list, replaced
whenever department/get is read, and the stores a member leads."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models_managers import DepartmentLeader


async def set_leaders(session: AsyncSession, *, tenant: str, department_id: int,
                      store_id: str | None, userids: Sequence[str], at: datetime) -> None:
    """The department's leaders now; none (or no store: the department is not one) clears."""
    await session.execute(delete(DepartmentLeader).where(
        DepartmentLeader.tenant == tenant, DepartmentLeader.department_id == department_id))
    if store_id is None:
        return
    session.add_all(DepartmentLeader(tenant=tenant, department_id=department_id, userid=u,
                                     store_id=store_id, updated_at=at)
                    for u in sorted(set(userids)))


async def stores_led_by(session: AsyncSession, *, tenant: str, userid: str) -> set[str]:
    stmt = select(DepartmentLeader.store_id).where(DepartmentLeader.tenant == tenant,
                                                   DepartmentLeader.userid == userid)
    return set((await session.execute(stmt)).scalars())


async def leaders(session: AsyncSession, *, tenant: str) -> set[tuple[str, str]]:
    """Every (leader's userid, store id) the address book names."""
    stmt = select(DepartmentLeader.userid, DepartmentLeader.store_id).where(
        DepartmentLeader.tenant == tenant)
    return {(u, s) for u, s in (await session.execute(stmt)).all()}


async def drop_leader(session: AsyncSession, *, tenant: str, userid: str) -> None:
    """A member who left leads nothing."""
    await session.execute(delete(DepartmentLeader).where(
        DepartmentLeader.tenant == tenant, DepartmentLeader.userid == userid))


async def keep_departments(session: AsyncSession, *, tenant: str,
                           department_ids: Sequence[int]) -> None:
    """Departments the sync no longer lists (deleted, or out of the app's range) have no
    leaders."""
    await session.execute(delete(DepartmentLeader).where(
        DepartmentLeader.tenant == tenant,
        DepartmentLeader.department_id.not_in(list(department_ids))))  # type: ignore[attr-defined]
