"""操作日志: one insert per entry; a tenant's entries in a span of time, newest first."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models_audit import AuditEntry


async def add(session: AsyncSession, entry: AuditEntry) -> None:
    session.add(entry)


async def newest_first(session: AsyncSession, *, tenant: str, start: datetime, end: datetime,
                       actor: str, after: tuple[datetime, int] | None,
                       limit: int) -> Sequence[AuditEntry]:
    """Entries at [start, end), of `actor` when given, after the cursor (an instant and an
    id, older than it), newest first."""
    stmt = select(AuditEntry).where(AuditEntry.tenant == tenant,
                                    AuditEntry.at >= start,  # type: ignore[operator]
                                    AuditEntry.at < end)  # type: ignore[operator]
    if actor:
        stmt = stmt.where(AuditEntry.actor == actor)
    if after is not None:
        at, entry_id = after
        stmt = stmt.where(or_(AuditEntry.at < at,  # type: ignore[operator]
                              (AuditEntry.at == at)
                              & (AuditEntry.id < entry_id)))  # type: ignore[operator]
    stmt = stmt.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)  # type: ignore[attr-defined,union-attr]
    return list((await session.execute(stmt)).scalars())
