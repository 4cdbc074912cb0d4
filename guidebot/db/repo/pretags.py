"""预打标签: pre-tags by unionid, pending until the customer adds a guide."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import CorpTag, Customer, Follow
from guidebot.db.models_pretags import PreTag

CHUNK = 500  # unionids per IN list


async def add_missing(session: AsyncSession, *, tenant: str, import_id: str,
                      pairs: Sequence[tuple[str, str]], now: datetime) -> int:
    """Store (unionid, tag id) pairs not stored yet (a pre-tag kept, applied or not, is left
    as it is); how many were new."""
    wanted = list(dict.fromkeys(pairs))
    unionids = sorted({u for u, _ in wanted})
    existing: set[tuple[str, str]] = set()
    for start in range(0, len(unionids), CHUNK):
        rows = await session.execute(select(PreTag.unionid, PreTag.tag_id).where(
            PreTag.tenant == tenant, PreTag.unionid.in_(  # type: ignore[attr-defined]
                unionids[start:start + CHUNK])))
        existing.update((u, t) for u, t in rows.all())
    new = [PreTag(tenant=tenant, unionid=u, tag_id=t, import_id=import_id, created_at=now)
           for u, t in wanted if (u, t) not in existing]
    session.add_all(new)
    await session.flush()
    return len(new)


async def pending_of(session: AsyncSession, *, tenant: str, unionid: str) -> list[str]:
    rows = await session.execute(select(PreTag.tag_id).where(
        PreTag.tenant == tenant, PreTag.unionid == unionid,
        PreTag.applied_at.is_(None)).order_by(PreTag.tag_id))  # type: ignore[union-attr]
    return [str(t) for t in rows.scalars()]


async def any_pending(session: AsyncSession, *, tenant: str) -> bool:
    """Whether the tenant has a pre-tag still pending (one indexed probe)."""
    found = await session.execute(select(PreTag.unionid).where(
        PreTag.tenant == tenant, PreTag.applied_at.is_(None)).limit(1))  # type: ignore[union-attr]
    return found.first() is not None


async def due_known(session: AsyncSession, *, tenant: str,
                    limit: int) -> list[tuple[str, str]]:
    """(unionid, external_userid) of customers guidebot knows by the unionid, who follow a
    guide now and have a pending pre-tag of a live corp tag: the ones to mark. Pre-tags of
    tags deleted since, and of customers following no guide, are left out (they stay
    pending without taking a pass's room)."""
    live_tag = select(CorpTag.tag_id).where(
        CorpTag.tenant == tenant, CorpTag.tag_id == PreTag.tag_id,
        CorpTag.deleted.is_(False)).exists()  # type: ignore[attr-defined]
    following = select(Follow.id).where(
        Follow.tenant == tenant, Follow.external_userid == Customer.external_userid,
        Follow.status == "active").exists()
    rows = await session.execute(
        select(PreTag.unionid, Customer.external_userid).distinct()
        .join(Customer, and_(Customer.tenant == PreTag.tenant,
                             Customer.unionid == PreTag.unionid))
        .where(PreTag.tenant == tenant, PreTag.applied_at.is_(None),  # type: ignore[union-attr]
               live_tag, following)
        .order_by(PreTag.unionid, Customer.external_userid).limit(limit))
    return [(str(u), str(c)) for u, c in rows.all()]


async def mark_applied(session: AsyncSession, *, tenant: str, unionid: str, tag_id: str,
                       guide: str, external_userid: str, at: datetime) -> None:
    await session.execute(update(PreTag).where(
        PreTag.tenant == tenant, PreTag.unionid == unionid, PreTag.tag_id == tag_id,
        PreTag.applied_at.is_(None)).values(  # type: ignore[union-attr]
        applied_at=at, guide=guide, external_userid=external_userid))


async def customers_of(session: AsyncSession, *, tenant: str,
                       unionids: Sequence[str]) -> dict[str, str]:
    """unionid → external_userid of the customers guidebot knows (profiles stored)."""
    found: dict[str, str] = {}
    wanted = sorted(set(unionids))
    for start in range(0, len(wanted), CHUNK):
        rows = await session.execute(select(Customer.unionid, Customer.external_userid).where(
            Customer.tenant == tenant, Customer.unionid.in_(  # type: ignore[union-attr]
                wanted[start:start + CHUNK])))
        found.update({str(u): str(c) for u, c in rows.all()})
    return found


async def listed(session: AsyncSession, *, tenant: str, status: str | None,
                 after: tuple[str, str], limit: int,
                 import_id: str | None = None) -> Sequence[PreTag]:
    """Pre-tags by unionid then tag id, after (unionid, tag id) `after`; of one import."""
    unionid, tag_id = after
    stmt = select(PreTag).where(PreTag.tenant == tenant, or_(
        PreTag.unionid > unionid, and_(PreTag.unionid == unionid, PreTag.tag_id > tag_id)))
    if import_id is not None:
        stmt = stmt.where(PreTag.import_id == import_id)
    if status == "pending":
        stmt = stmt.where(PreTag.applied_at.is_(None))  # type: ignore[union-attr]
    elif status == "applied":
        stmt = stmt.where(PreTag.applied_at.is_not(None))  # type: ignore[union-attr]
    stmt = stmt.order_by(PreTag.unionid, PreTag.tag_id).limit(limit)
    return (await session.execute(stmt)).scalars().all()


async def delete_pending(session: AsyncSession, *, tenant: str, unionid: str) -> int:
    result = await session.execute(delete(PreTag).where(
        PreTag.tenant == tenant, PreTag.unionid == unionid,
        PreTag.applied_at.is_(None)))  # type: ignore[union-attr]
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def counts(session: AsyncSession, *, tenant: str, live: set[str],
                 import_id: str | None = None) -> dict[str, int]:
    """pending, applied, and pending ones whose tag is no longer in the library."""
    stmt = select(PreTag.tag_id, PreTag.applied_at.is_(None),  # type: ignore[union-attr]
                  func.count()).where(PreTag.tenant == tenant)
    if import_id is not None:
        stmt = stmt.where(PreTag.import_id == import_id)
    stmt = stmt.group_by(PreTag.tag_id, PreTag.applied_at.is_(None))  # type: ignore[union-attr]
    out = {"pending": 0, "applied": 0, "tags_unknown": 0}
    for tag_id, pending, n in (await session.execute(stmt)).all():
        out["pending" if pending else "applied"] += int(n)
        if pending and tag_id not in live:
            out["tags_unknown"] += int(n)
    return out
