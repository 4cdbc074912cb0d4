"""Tracking queries: sent tasks whose WeCom outcome is due for a look (moment job results)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models_sop import SopTask


async def due_for_tracking(session: AsyncSession, *, tenant: str, kind: str, now: datetime,
                           limit: int) -> list[SopTask]:
    """Sent tasks of `kind` with a WeCom id whose next look is due, locked (SKIP LOCKED) so
    several processes never look at one task twice in the same pass."""
    stmt = (select(SopTask).where(
        SopTask.tenant == tenant, SopTask.kind == kind, SopTask.status == "sent",
        SopTask.msgid != "", SopTask.next_check_at <= now)  # type: ignore[operator]
        .order_by(SopTask.next_check_at).limit(limit)  # type: ignore[arg-type]
        .with_for_update(skip_locked=True))
    return list((await session.execute(stmt)).scalars())
