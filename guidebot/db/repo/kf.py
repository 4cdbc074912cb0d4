"""微信客服 queries: cursors (locked while paging), messages once by msgid, session counts, and
what intake reads about a writer (contact, binding, store, tags, recent order skus)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import Binding, Customer, Guide
from guidebot.db.models_commerce import Order
from guidebot.db.models_kf import KfCursor, KfMessage, KfSession
from guidebot.db.repo._dialect import insert_for, is_postgres

SEND_LIMIT = 5


async def ensure_cursor(session: AsyncSession, *, tenant: str, open_kfid: str,
                        now: datetime) -> None:
    stmt = insert_for(session, KfCursor.__table__).values(
        tenant=tenant, open_kfid=open_kfid, cursor="", created_at=now, updated_at=now)
    await session.execute(stmt.on_conflict_do_nothing(index_elements=["tenant", "open_kfid"]))


async def lock_cursor(session: AsyncSession, *, tenant: str, open_kfid: str) -> KfCursor | None:
    """The account's cursor; on PostgreSQL the row stays locked (FOR UPDATE) until the
    transaction ends, so one process at a time pages an account."""
    stmt = select(KfCursor).where(KfCursor.tenant == tenant, KfCursor.open_kfid == open_kfid)
    if is_postgres(session):
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalars().first()


async def set_cursor(session: AsyncSession, *, tenant: str, open_kfid: str, cursor: str,
                     now: datetime) -> None:
    await session.execute(update(KfCursor).where(
        KfCursor.tenant == tenant, KfCursor.open_kfid == open_kfid).values(  # type: ignore[arg-type]
        cursor=cursor, updated_at=now))


async def insert_messages(session: AsyncSession, *, rows: Sequence[dict[str, Any]]) -> list[str]:
    """Insert the items whose msgid is new; their msgids."""
    if not rows:
        return []
    table = KfMessage.__table__
    stmt = (insert_for(session, table).values(list(rows))
            .on_conflict_do_nothing(index_elements=["tenant", "msgid"])
            .returning(table.c.msgid))  # type: ignore[attr-defined]
    return list((await session.execute(stmt)).scalars())


async def pending_messages(session: AsyncSession, *, tenant: str, open_kfid: str,
                           stale_before: datetime) -> Sequence[KfMessage]:
    """Messages to handle: pending ones, and ones a worker claimed before `stale_before` and
    never finished (its process died)."""
    stmt = (select(KfMessage).where(KfMessage.tenant == tenant,
                                    KfMessage.open_kfid == open_kfid, _open(stale_before))
            .order_by(KfMessage.send_time, KfMessage.id))  # type: ignore[arg-type]
    return list((await session.execute(stmt)).scalars())


def _open(stale_before: datetime) -> Any:
    return or_(KfMessage.status == "pending",
               and_(KfMessage.status == "working",
                    KfMessage.handled_at < stale_before))  # type: ignore[operator]


async def claim_message(session: AsyncSession, *, message_id: int, now: datetime,
                        stale_before: datetime) -> bool:
    """pending (or stale working) → working, stamped; False when another worker has it."""
    result = await session.execute(update(KfMessage).where(
        KfMessage.id == message_id, _open(stale_before)).values(  # type: ignore[arg-type]
        status="working", handled_at=now))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def finish_message(session: AsyncSession, *, message_id: int, status: str, route: str,
                         reason: str, guide: str | None, now: datetime) -> None:
    await session.execute(update(KfMessage).where(KfMessage.id == message_id).values(  # type: ignore[arg-type]
        status=status, route=route[:16], reason=reason[:128], guide=guide, handled_at=now))


async def messages_of(session: AsyncSession, *, tenant: str,
                      external_userid: str | None = None) -> Sequence[KfMessage]:
    stmt = select(KfMessage).where(KfMessage.tenant == tenant)
    if external_userid is not None:
        stmt = stmt.where(KfMessage.external_userid == external_userid)
    return list((await session.execute(stmt.order_by(KfMessage.send_time,  # type: ignore[arg-type]
                                                     KfMessage.id))).scalars())


async def customer_wrote(session: AsyncSession, *, tenant: str, open_kfid: str,
                         external_userid: str, at: datetime, now: datetime) -> None:
    """A new customer message restarts the 48 h window and the 5-message count (call it once
    per new message: send_time has whole seconds, so one in the same second counts too)."""
    table = KfSession.__table__
    stmt = insert_for(session, table).values(
        tenant=tenant, open_kfid=open_kfid, external_userid=external_userid,
        last_customer_at=at, sent=0, updated_at=now)
    await session.execute(stmt.on_conflict_do_nothing(
        index_elements=["tenant", "open_kfid", "external_userid"]))
    await session.execute(update(KfSession).where(
        KfSession.tenant == tenant, KfSession.open_kfid == open_kfid,
        KfSession.external_userid == external_userid,
        KfSession.last_customer_at <= at).values(  # type: ignore[arg-type]
        last_customer_at=at, sent=0, updated_at=now))


async def reserve_send(session: AsyncSession, *, tenant: str, open_kfid: str,
                       external_userid: str, since: datetime, now: datetime) -> bool:
    """Count one more message if fewer than 5 went out since a customer message at or after
    `since` (48 h ago); False: sending would break WeCom's rule."""
    result = await session.execute(update(KfSession).where(
        KfSession.tenant == tenant, KfSession.open_kfid == open_kfid,
        KfSession.external_userid == external_userid, KfSession.sent < SEND_LIMIT,
        KfSession.last_customer_at >= since).values(  # type: ignore[arg-type]
        sent=KfSession.sent + 1, updated_at=now))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def release_send(session: AsyncSession, *, tenant: str, open_kfid: str,
                       external_userid: str) -> None:
    """A reserved message WeCom did not take back into the count."""
    await session.execute(update(KfSession).where(
        KfSession.tenant == tenant, KfSession.open_kfid == open_kfid,
        KfSession.external_userid == external_userid,
        KfSession.sent > 0).values(sent=KfSession.sent - 1))  # type: ignore[arg-type]


async def customer_by_unionid(session: AsyncSession, *, tenant: str,
                              unionid: str) -> str | None:
    stmt = (select(Customer.external_userid)
            .where(Customer.tenant == tenant, Customer.unionid == unionid)
            .order_by(Customer.created_at).limit(1))  # type: ignore[arg-type]
    return (await session.execute(stmt)).scalars().first()


async def current_guide(session: AsyncSession, *, tenant: str,
                        external_userid: str) -> Guide | None:
    """The guide of the customer's open binding (the exclusive guide), if any."""
    stmt = (select(Guide).join(Binding, (Binding.tenant == Guide.tenant)
                               & (Binding.guide == Guide.userid))
            .where(Binding.tenant == tenant, Binding.external_userid == external_userid,
                   Binding.ended_at.is_(None))  # type: ignore[union-attr]
            .order_by(Binding.started_at.desc()).limit(1))  # type: ignore[attr-defined]
    return (await session.execute(stmt)).scalars().first()


async def store_guides(session: AsyncSession, *, tenant: str, store_id: str) -> list[str]:
    stmt = (select(Guide.userid).where(Guide.tenant == tenant, Guide.store_id == store_id)
            .order_by(Guide.userid))  # type: ignore[arg-type]
    return list((await session.execute(stmt)).scalars())


async def recent_skus(session: AsyncSession, *, tenant: str, external_userid: str,
                      orders: int = 5) -> list[str]:
    """Skus of the customer's latest paid orders, newest first, each once."""
    stmt = (select(Order.lines).where(Order.tenant == tenant,
                                      Order.external_userid == external_userid)
            .order_by(Order.paid_at.desc()).limit(orders))  # type: ignore[attr-defined]
    skus: list[str] = []
    for lines in (await session.execute(stmt)).scalars():
        for line in json.loads(lines or "[]"):  # commerce/evidence.py: [sku, category, …]
            sku = line.get("sku") if isinstance(line, dict) else (line[0] if line else None)
            if sku and sku not in skus:
                skus.append(str(sku))
    return skus
