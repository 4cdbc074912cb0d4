"""Figures for operators: a ping, the inbox backlog and outbox rows by state."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import InboxItem, OutboxItem


async def inbox_backlog(session: AsyncSession) -> dict[str, tuple[int, datetime | None]]:
    """Per tenant: unprocessed inbox rows and the oldest one's received_at (UTC)."""
    stmt = (select(InboxItem.tenant, func.count(), func.min(InboxItem.received_at))
            .where(InboxItem.processed_at.is_(None)).group_by(InboxItem.tenant))
    return {tenant: (int(count), _aware(oldest))
            for tenant, count, oldest in (await session.execute(stmt)).all()}


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)  # the column stores naive UTC


# Grouped in the order of the (status, tenant) index, so the count reads the index alone,
# not every row and its payload (millions of rows on a large brand's database).
OUTBOX_BY_STATE = (select(OutboxItem.tenant, OutboxItem.status, func.count())
                   .group_by(OutboxItem.status, OutboxItem.tenant))


# Failed rows an executor postponed (guidebot/outbox.py Postponed: a guide's app message
# budget, "quota: …"): found through the same index (failed rows are few), then their error.
OUTBOX_HELD = (select(OutboxItem.tenant, func.count())
               .where(OutboxItem.status == "failed",
                      OutboxItem.last_error.startswith("quota:"))  # type: ignore[attr-defined]
               .group_by(OutboxItem.tenant))


async def outbox_by_state(session: AsyncSession) -> dict[tuple[str, str], int]:
    """(tenant, status) → number of outbox rows; "held" counts the failed rows that wait
    for a guide's app message budget (they are not in "failed")."""
    found = {(tenant, status): int(count)
             for tenant, status, count in (await session.execute(OUTBOX_BY_STATE)).all()}
    for tenant, count in (await session.execute(OUTBOX_HELD)).all():
        found[(tenant, "held")] = int(count)
        found[(tenant, "failed")] = found.get((tenant, "failed"), 0) - int(count)
    return found


async def ping(session: AsyncSession) -> None:
    """One round trip: the database is reachable and answers queries."""
    await session.execute(select(1))
