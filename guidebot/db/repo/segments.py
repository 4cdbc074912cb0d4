"""Saved customer segments (客户分群): stored, listed, changed and removed per tenant."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import CorpTag, Guide, Store
from guidebot.db.models_segments import CustomerSegment

LIMIT = 500  # segments a tenant may keep


async def insert(session: AsyncSession, *, tenant: str, name: str, conditions: str,
                 operator: str, now: datetime) -> int:
    row = CustomerSegment(tenant=tenant, name=name, conditions=conditions, operator=operator,
                          created_at=now, updated_at=now)
    session.add(row)
    await session.flush()
    assert row.id is not None
    return row.id


async def get(session: AsyncSession, *, tenant: str, segment_id: int) -> CustomerSegment | None:
    stmt = select(CustomerSegment).where(CustomerSegment.tenant == tenant,
                                         CustomerSegment.id == segment_id)
    return (await session.execute(stmt)).scalars().first()


async def of_tenant(session: AsyncSession, *, tenant: str) -> list[CustomerSegment]:
    stmt = (select(CustomerSegment).where(CustomerSegment.tenant == tenant)
            .order_by(CustomerSegment.id).limit(LIMIT))  # type: ignore[arg-type]
    return list((await session.execute(stmt)).scalars())


async def change(session: AsyncSession, *, tenant: str, segment_id: int, name: str,
                 conditions: str, operator: str, now: datetime) -> bool:
    result = await session.execute(
        update(CustomerSegment).where(CustomerSegment.tenant == tenant,
                                      CustomerSegment.id == segment_id)
        .values(name=name, conditions=conditions, operator=operator, updated_at=now))
    return bool(getattr(result, "rowcount", 0))


async def remove(session: AsyncSession, *, tenant: str, segment_id: int) -> bool:
    result = await session.execute(
        delete(CustomerSegment).where(CustomerSegment.tenant == tenant,  # type: ignore[arg-type]
                                      CustomerSegment.id == segment_id))  # type: ignore[arg-type]
    return bool(getattr(result, "rowcount", 0))


async def known(session: AsyncSession, *,
                tenant: str) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """The tenant's corp tags (id → name, deleted ones left out), guides and stores (id →
    name; a store a guide names counts, known from the address book or not), which a
    segment's conditions may name."""
    tags = select(CorpTag.tag_id, CorpTag.name).where(CorpTag.tenant == tenant,
                                                      CorpTag.deleted.is_(False))  # type: ignore[attr-defined]
    guides = select(Guide.userid, Guide.name).where(Guide.tenant == tenant)
    stores = select(Store.store_id, Store.name).where(Store.tenant == tenant)
    of_guides = select(Guide.store_id).where(Guide.tenant == tenant,
                                             Guide.store_id.is_not(None)).distinct()  # type: ignore[union-attr]
    named = {i: n for i, n in (await session.execute(stores)).all()}
    return ({i: n for i, n in (await session.execute(tags)).all()},
            {i: n for i, n in (await session.execute(guides)).all()},
            {**{i: "" for i in (await session.execute(of_guides)).scalars()}, **named})


async def deleted_tags(session: AsyncSession, *, tenant: str,
                       tag_ids: Iterable[str]) -> dict[str, str]:
    """Those of these corp tag ids that are no longer live (deleted in WeCom, or not in the
    mirror at all), each with the name the mirror last had for it ("" when none)."""
    ids = sorted(set(tag_ids))
    if not ids:
        return {}
    stmt = select(CorpTag.tag_id, CorpTag.name, CorpTag.deleted).where(
        CorpTag.tenant == tenant, CorpTag.tag_id.in_(ids))  # type: ignore[attr-defined]
    rows = {i: (n, d) for i, n, d in (await session.execute(stmt)).all()}
    return {i: rows[i][0] if i in rows else "" for i in ids
            if i not in rows or rows[i][1]}


async def store_counts(session: AsyncSession, *, tenant: str,
                       counts: dict[int, int], at: datetime) -> None:
    """Each segment's count as found `at` (the list shows these)."""
    for segment_id, count in counts.items():
        await session.execute(
            update(CustomerSegment).where(CustomerSegment.tenant == tenant,
                                          CustomerSegment.id == segment_id)
            .values(last_count=count, counted_at=at))
