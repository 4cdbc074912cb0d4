"""预打标签: pre-tags by unionid, pending until the customer adds a guide; then being marked
(handed to the outbox: `outbox_key`), failed when that row died, applied once WeCom accepted
the mark. A pending pre-tag whose tag left the library is `tag_deleted`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import CorpTag, Customer, Follow, OutboxItem
from guidebot.db.models_pretags import PreTag

CHUNK = 500  # unionids per IN list
STATES = ("pending", "marking", "failed", "applied", "tag_deleted")
GONE = ("dead", "expired")  # outbox rows never tried again unless HQ puts them back


def _live_tag() -> Any:
    """The pre-tag's tag is in the library (corp_tags' primary key)."""
    return select(CorpTag.tag_id).where(
        CorpTag.tenant == PreTag.tenant, CorpTag.tag_id == PreTag.tag_id,
        CorpTag.deleted.is_(False)).exists()  # type: ignore[attr-defined]


def _waiting() -> Any:
    """Not handed to the outbox yet (nor applied)."""
    return and_(PreTag.applied_at.is_(None), PreTag.outbox_key == "")  # type: ignore[union-attr]


def _state() -> Any:
    """A pre-tag's state; with PreTag outer-joined to its outbox row (`_with_call`)."""
    return case(
        (PreTag.applied_at.is_not(None), "applied"),  # type: ignore[union-attr]
        (PreTag.outbox_key != "", case(
            (OutboxItem.status.in_(GONE), "failed"),  # type: ignore[attr-defined]
            else_="marking")),
        (_live_tag(), "pending"),
        else_="tag_deleted")


def _with_call(*columns: Any) -> Any:
    """SELECT columns FROM pretags LEFT JOIN its mark_tag's outbox row (unique tenant, key)."""
    return select(*columns).select_from(PreTag).outerjoin(OutboxItem, and_(
        OutboxItem.tenant == PreTag.tenant, OutboxItem.key == PreTag.outbox_key))


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
    """The unionid's tags not handed to the outbox yet (of deleted tags too)."""
    rows = await session.execute(select(PreTag.tag_id).where(
        PreTag.tenant == tenant, PreTag.unionid == unionid, _waiting()).order_by(PreTag.tag_id))
    return [str(t) for t in rows.scalars()]


async def any_pending(session: AsyncSession, *, tenant: str) -> bool:
    """Whether the tenant has a pre-tag still pending (one indexed probe): not handed to the
    outbox yet, of a tag still in the library (one deleted since is never marked)."""
    found = await session.execute(select(PreTag.unionid).where(
        PreTag.tenant == tenant, _waiting(), _live_tag()).limit(1))
    return found.first() is not None


async def due_known(session: AsyncSession, *, tenant: str,
                    limit: int) -> list[tuple[str, str]]:
    """(unionid, external_userid) of customers guidebot knows by the unionid, who follow a
    guide now and have a pending pre-tag of a live corp tag: the ones to mark. Pre-tags of
    tags deleted since, and of customers following no guide, are left out (they stay
    deleted, and of customers following no guide, are left out (they wait without taking a
    pass's room)."""
    following = select(Follow.id).where(
        Follow.tenant == tenant, Follow.external_userid == Customer.external_userid,
        Follow.status == "active").exists()
    rows = await session.execute(
        select(PreTag.unionid, Customer.external_userid).distinct()
        .join(Customer, and_(Customer.tenant == PreTag.tenant,
                             Customer.unionid == PreTag.unionid))
        .where(PreTag.tenant == tenant, _waiting(), _live_tag(), following)
        .order_by(PreTag.unionid, Customer.external_userid).limit(limit))
    return [(str(u), str(c)) for u, c in rows.all()]


async def mark_applied(session: AsyncSession, *, tenant: str, unionid: str, tag_id: str,
                       guide: str, external_userid: str, key: str, at: datetime) -> None:
    """WeCom accepted the mark under outbox `key` (and it is mirrored): applied."""
    await session.execute(update(PreTag).where(
        PreTag.tenant == tenant, PreTag.unionid == unionid, PreTag.tag_id == tag_id,
        PreTag.applied_at.is_(None)).values(  # type: ignore[union-attr]
        applied_at=at, guide=guide, external_userid=external_userid, outbox_key=key))


async def mark_handed(session: AsyncSession, *, tenant: str, unionid: str, tag_id: str,
                      guide: str, external_userid: str, key: str) -> None:
    """The mark is the outbox row `key`'s now (being marked, or failed when it dies)."""
    await session.execute(update(PreTag).where(
        PreTag.tenant == tenant, PreTag.unionid == unionid, PreTag.tag_id == tag_id,
        _waiting()).values(guide=guide, external_userid=external_userid, outbox_key=key))


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
                 import_id: str | None = None) -> list[tuple[PreTag, str, str]]:
    """(pre-tag, state, its outbox row's last error) by unionid then tag id, after (unionid,
    tag id) `after`; of one import; in one state."""
    unionid, tag_id = after
    state = _state()
    stmt = _with_call(PreTag, state, OutboxItem.last_error).where(
        PreTag.tenant == tenant, or_(PreTag.unionid > unionid,
                                     and_(PreTag.unionid == unionid, PreTag.tag_id > tag_id)))
    if import_id is not None:
        stmt = stmt.where(PreTag.import_id == import_id)
    if status is not None:
        stmt = stmt.where(state == status)
    stmt = stmt.order_by(PreTag.unionid, PreTag.tag_id).limit(limit)
    return [(row, str(st), str(error or "")) for row, st, error in
            (await session.execute(stmt)).all()]


async def delete_pending(session: AsyncSession, *, tenant: str, unionid: str) -> int:
    """Forget the unionid's pre-tags not handed to the outbox yet."""
    result = await session.execute(delete(PreTag).where(
        PreTag.tenant == tenant, PreTag.unionid == unionid, _waiting()))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def counts(session: AsyncSession, *, tenant: str,
                 import_id: str | None = None) -> dict[str, int]:
    """How many pre-tags are in each state (STATES)."""
    rows = _with_call(_state().label("state")).where(PreTag.tenant == tenant)
    if import_id is not None:
        rows = rows.where(PreTag.import_id == import_id)
    states = rows.subquery()  # grouped by the named column (PostgreSQL would not match two
    # renderings of the CASE with their own bound parameters)
    out = dict.fromkeys(STATES, 0)
    for st, n in (await session.execute(select(states.c.state, func.count())
                                        .group_by(states.c.state))).all():
        out[str(st)] += int(n)
    return out
