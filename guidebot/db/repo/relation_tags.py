"""The corp tags on guide↔customer relations, for reconciling the mirror with WeCom."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import CorpTag, CustomerTag, Follow


async def relation_tag_ids(session: AsyncSession, *, tenant: str, external_userid: str,
                           guide: str) -> set[str]:
    stmt = select(CustomerTag.tag_id).where(
        CustomerTag.tenant == tenant, CustomerTag.external_userid == external_userid,
        CustomerTag.guide == guide)
    return set((await session.execute(stmt)).scalars())


async def known_tag_ids(session: AsyncSession, *, tenant: str,
                        tag_ids: Iterable[str]) -> set[str]:
    """Which of these ids are live tags of the mirrored corp tag library."""
    wanted = list(tag_ids)
    if not wanted:
        return set()
    stmt = select(CorpTag.tag_id).where(
        CorpTag.tenant == tenant, CorpTag.tag_id.in_(wanted),  # type: ignore[attr-defined]
        CorpTag.deleted.is_(False))  # type: ignore[attr-defined]
    return set((await session.execute(stmt)).scalars())


async def guides_with_relations(session: AsyncSession, *, tenant: str) -> list[str]:
    """Guides with at least one active relation, in order."""
    stmt = (select(Follow.guide).where(Follow.tenant == tenant, Follow.status == "active")
            .distinct().order_by(Follow.guide))
    return list((await session.execute(stmt)).scalars())


async def mirrored_relations(session: AsyncSession, *, tenant: str,
                             guides: Sequence[str]) -> dict[tuple[str, str], set[str]]:
    """Every active relation of these guides, (guide, customer) → its mirrored tag ids."""
    follows = select(Follow.guide, Follow.external_userid).where(
        Follow.tenant == tenant, Follow.status == "active",
        Follow.guide.in_(list(guides)))  # type: ignore[attr-defined]
    out: dict[tuple[str, str], set[str]] = {
        (g, c): set() for g, c in (await session.execute(follows)).all()}
    tags = select(CustomerTag.guide, CustomerTag.external_userid, CustomerTag.tag_id).where(
        CustomerTag.tenant == tenant, CustomerTag.guide.in_(list(guides)))  # type: ignore[attr-defined]
    for guide, customer, tag_id in (await session.execute(tags)).all():
        if (guide, customer) in out:
            out[(guide, customer)].add(tag_id)
    return out


async def live_tag_ids(session: AsyncSession, *, tenant: str) -> set[str]:
    """Every live tag id of the mirrored corp tag library."""
    stmt = select(CorpTag.tag_id).where(CorpTag.tenant == tenant,
                                        CorpTag.deleted.is_(False))  # type: ignore[attr-defined]
    return set((await session.execute(stmt)).scalars())
