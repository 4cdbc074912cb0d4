"""The corp tags on one guide↔customer relation, for reconciling the mirror with WeCom."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import CorpTag, CustomerTag


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
