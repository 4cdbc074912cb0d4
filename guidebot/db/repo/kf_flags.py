"""会话质检 queries (chat/watch.py): flags stored with the messages, the servicer who had a
conversation, alert flags not yet handed to the outbox, and a range's flags and counts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models_kf import KfFlag, KfMessage
from guidebot.db.repo._dialect import insert_for


async def insert_flags(session: AsyncSession, *, rows: Sequence[dict[str, Any]]) -> None:
    """Each (message, rule) once: a row already there stays."""
    if rows:
        stmt = insert_for(session, KfFlag).on_conflict_do_nothing(
            index_elements=["tenant", "msgid", "rule"])
        await session.execute(stmt, list(rows))


async def servicer_then(session: AsyncSession, *, tenant: str, open_kfid: str,
                        external_userid: str, at: datetime) -> str:
    """Who had the conversation at `at`: the latest servicer's message (origin 5), transfer
    event or handoff in it up to then; "" if none."""
    stmt = (select(KfMessage.servicer_userid, KfMessage.guide)
            .where(KfMessage.tenant == tenant, KfMessage.open_kfid == open_kfid,
                   KfMessage.external_userid == external_userid,
                   KfMessage.send_time <= at,  # type: ignore[operator]
                   or_(KfMessage.servicer_userid != "",
                       and_(KfMessage.status == "handoff",
                            KfMessage.guide.is_not(None))))  # type: ignore[union-attr]
            .order_by(KfMessage.send_time.desc(), KfMessage.id.desc())  # type: ignore[attr-defined,union-attr]
            .limit(1))
    row = (await session.execute(stmt)).first()
    return str(row[0] or row[1] or "") if row is not None else ""


async def unnotified(session: AsyncSession, *, tenant: str, limit: int) -> list[KfFlag]:
    """Alert flags not yet handed to the outbox, oldest first."""
    stmt = (select(KfFlag).where(KfFlag.tenant == tenant, KfFlag.level == "alert",
                                 KfFlag.notified_at.is_(None))  # type: ignore[union-attr]
            .order_by(KfFlag.id).limit(limit))  # type: ignore[arg-type]
    return list((await session.execute(stmt)).scalars())


async def mark_notified(session: AsyncSession, *, flag_ids: Sequence[int],
                        now: datetime) -> None:
    if flag_ids:
        await session.execute(update(KfFlag).where(
            KfFlag.id.in_(list(flag_ids)), KfFlag.notified_at.is_(None))  # type: ignore[union-attr]
            .values(notified_at=now))


def _in_range(tenant: str, since: datetime, until: datetime, guide: str | None,
              rule: str | None) -> list[Any]:
    where = [KfFlag.tenant == tenant, KfFlag.send_time >= since,  # type: ignore[operator]
             KfFlag.send_time < until]  # type: ignore[operator]
    if guide is not None:
        where.append(KfFlag.guide == guide)
    if rule is not None:
        where.append(KfFlag.rule == rule)
    return where


async def flag_counts(session: AsyncSession, *, tenant: str, since: datetime, until: datetime,
                      guide: str | None, rule: str | None) -> list[tuple[str, str, int]]:
    """(guide, rule, flags) of the range, filtered."""
    stmt = (select(KfFlag.guide, KfFlag.rule, func.count())
            .where(*_in_range(tenant, since, until, guide, rule))
            .group_by(KfFlag.guide, KfFlag.rule))
    return [(str(g), str(r), int(n)) for g, r, n in (await session.execute(stmt)).all()]


async def flags_with_text(session: AsyncSession, *, tenant: str, since: datetime,
                          until: datetime, guide: str | None, rule: str | None,
                          limit: int) -> list[tuple[KfFlag, str]]:
    """The range's flags, newest first, each with its message's text (for HQ's page)."""
    stmt = (select(KfFlag, KfMessage.text)
            .join(KfMessage, and_(KfMessage.tenant == KfFlag.tenant,
                                  KfMessage.msgid == KfFlag.msgid), isouter=True)
            .where(*_in_range(tenant, since, until, guide, rule))
            .order_by(KfFlag.send_time.desc(), KfFlag.id.desc())  # type: ignore[attr-defined,union-attr]
            .limit(limit))
    return [(flag, str(text or "")) for flag, text in (await session.execute(stmt)).all()]
