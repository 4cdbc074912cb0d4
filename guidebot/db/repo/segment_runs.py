"""批量打标签 runs (segment_tag_runs): started, staged a page at a time under a lease, read
with what the outbox made of their marks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import OutboxItem
from guidebot.db.models_segments import CustomerSegment, SegmentTagRun

LISTED = 50  # runs a segment's page and list show, newest first


async def lock_segment(session: AsyncSession, *, tenant: str, segment_id: int) -> bool:
    """The segment row locked for this transaction (PostgreSQL; SQLite has one writer), so
    two starts for it are taken one after the other; False when the tenant has none."""
    stmt = (select(CustomerSegment.id).where(CustomerSegment.tenant == tenant,
                                             CustomerSegment.id == segment_id)
            .with_for_update())
    return (await session.execute(stmt)).first() is not None


async def staging(session: AsyncSession, *, tenant: str, segment_id: int,
                  tag_id: str) -> SegmentTagRun | None:
    stmt = select(SegmentTagRun).where(
        SegmentTagRun.tenant == tenant, SegmentTagRun.segment_id == segment_id,
        SegmentTagRun.tag_id == tag_id, SegmentTagRun.state == "staging").limit(1)
    return (await session.execute(stmt)).scalars().first()


async def insert(session: AsyncSession, *, tenant: str, segment_id: int, tag_id: str,
                 tag: str, operator: str, owner: str, lease_until: datetime,
                 now: datetime) -> SegmentTagRun:
    row = SegmentTagRun(tenant=tenant, segment_id=segment_id, tag_id=tag_id, tag=tag,
                        operator=operator, lease_owner=owner, lease_until=lease_until,
                        created_at=now)
    session.add(row)
    await session.flush()
    return row


async def get(session: AsyncSession, *, tenant: str, run_id: int) -> SegmentTagRun | None:
    stmt = select(SegmentTagRun).where(SegmentTagRun.tenant == tenant,
                                       SegmentTagRun.id == run_id)
    return (await session.execute(stmt)).scalars().first()


async def of_segment(session: AsyncSession, *, tenant: str,
                     segment_id: int) -> list[SegmentTagRun]:
    stmt = (select(SegmentTagRun).where(SegmentTagRun.tenant == tenant,
                                        SegmentTagRun.segment_id == segment_id)
            .order_by(SegmentTagRun.id.desc()).limit(LISTED))  # type: ignore[union-attr]
    return list((await session.execute(stmt)).scalars())


def _lapsed(before: datetime) -> Any:
    return (SegmentTagRun.state == "staging") & or_(
        SegmentTagRun.lease_until.is_(None),  # type: ignore[union-attr]
        SegmentTagRun.lease_until < before)  # type: ignore[operator]


async def lapsed(session: AsyncSession, *, before: datetime) -> list[tuple[int, str]]:
    """Runs (id, tenant) left staging whose lease ran out before `before` (their process
    stopped or died)."""
    stmt = select(SegmentTagRun.id, SegmentTagRun.tenant).where(_lapsed(before))
    return [(int(i), str(t)) for i, t in (await session.execute(stmt)).all()]


async def claim(session: AsyncSession, *, run_id: int, owner: str, before: datetime,
                lease_until: datetime) -> bool:
    """Take a staging run whose lease has run out (one process wins)."""
    result = await session.execute(
        update(SegmentTagRun).where(SegmentTagRun.id == run_id, _lapsed(before))
        .values(lease_owner=owner, lease_until=lease_until))
    return bool(getattr(result, "rowcount", 0))


async def staged_page(session: AsyncSession, *, run_id: int, owner: str,
                      added: dict[str, int], ids: Sequence[int], cursor: str,
                      done: bool, lease_until: datetime, now: datetime) -> bool:
    """A page's counts added, the cursor moved on and the lease renewed, while `owner` still
    holds the run (False: another process took it over; the caller rolls back)."""
    run = SegmentTagRun
    values: dict[str, Any] = {k: getattr(run, k) + v for k, v in added.items()}
    if ids:
        values["first_outbox_id"] = func.coalesce(run.first_outbox_id, min(ids))
        values["last_outbox_id"] = max(ids)  # a later page's rows are newer
    values.update(cursor=cursor, lease_until=lease_until)
    if done:
        values.update(state="staged", finished_at=now, lease_owner="", lease_until=None)
    result = await session.execute(
        update(run).where(run.id == run_id, run.lease_owner == owner,
                          run.state == "staging").values(**values))
    return bool(getattr(result, "rowcount", 0))


async def fail(session: AsyncSession, *, run_id: int, owner: str, error: str,
               now: datetime) -> None:
    await session.execute(
        update(SegmentTagRun).where(SegmentTagRun.id == run_id,
                                    SegmentTagRun.lease_owner == owner,
                                    SegmentTagRun.state == "staging")
        .values(state="failed", error=error[:256], finished_at=now, lease_owner="",
                lease_until=None))


async def marks(session: AsyncSession, *, run: SegmentTagRun, prefix: str) -> dict[str, int]:
    """The run's outbox rows by status: within its id range (the ids its pages registered,
    in order), then by key, so the read is a primary-key range, not the tenant's outbox."""
    if run.first_outbox_id is None or run.last_outbox_id is None:
        return {}
    stmt = (select(OutboxItem.status, func.count())
            .where(OutboxItem.id.between(run.first_outbox_id,  # type: ignore[union-attr]
                                         run.last_outbox_id),
                   OutboxItem.tenant == run.tenant,
                   OutboxItem.key.startswith(prefix, autoescape=True))  # type: ignore[attr-defined,call-arg]
            .group_by(OutboxItem.status))
    return {str(s): int(n) for s, n in (await session.execute(stmt)).all()}
