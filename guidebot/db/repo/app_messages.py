"""The per-guide app message budget's rows (app_message_sends): lock a guide's budget, count
and record sends, prune old rows. The rules are guidebot/app_quota.py's."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import AppMessageSend
from guidebot.db.repo._dialect import is_postgres


async def lock_guides(session: AsyncSession, *, tenant: str, guides: Sequence[str]) -> None:
    """Hold these guides' budgets until the transaction ends (PostgreSQL: advisory locks,
    taken in one order so two lockers never wait on each other; SQLite has one writer, so
    its write transaction already holds everything)."""
    if not is_postgres(session):
        return
    for guide in sorted(set(guides)):
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                              {"k": f"guidebot-app-msg:{tenant}\x1f{guide}"})


async def window(session: AsyncSession, *, tenant: str, guides: Sequence[str],
                 since: datetime, until: datetime) -> dict[str, tuple[int, datetime]]:
    """Per guide with sends in (since, until): how many, and the oldest one's time."""
    stmt = (select(AppMessageSend.guide, func.count(), func.min(AppMessageSend.at))
            .where(AppMessageSend.tenant == tenant,
                   AppMessageSend.guide.in_(sorted(set(guides))),  # type: ignore[attr-defined]
                   AppMessageSend.at > since, AppMessageSend.at < until)  # type: ignore[operator]
            .group_by(AppMessageSend.guide))
    return {str(g): (int(n), oldest) for g, n, oldest in (await session.execute(stmt)).all()}


async def record(session: AsyncSession, *, tenant: str, guides: Sequence[str],
                 at: datetime) -> None:
    """One send per entry of `guides` (a guide twice: two sends)."""
    if guides:
        await session.execute(insert(AppMessageSend),
                              [{"tenant": tenant, "guide": g, "at": at} for g in guides])


async def prune(session: AsyncSession, *, tenant: str, guides: Sequence[str],
                before: datetime) -> None:
    """Forget these guides' sends older than `before` (read through the same index)."""
    await session.execute(delete(AppMessageSend).where(
        AppMessageSend.tenant == tenant,
        AppMessageSend.guide.in_(sorted(set(guides))),  # type: ignore[attr-defined]
        AppMessageSend.at < before))  # type: ignore[operator]
