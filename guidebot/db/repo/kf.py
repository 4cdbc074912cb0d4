"""微信客服 queries: cursors (locked while paging), messages once by msgid, session counts, and
what intake reads about a writer (contact, binding, store, tags, recent order skus)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import Binding, Customer, Guide
from guidebot.db.models_commerce import Order
from guidebot.db.models_kf import KfCursor, KfCustomer, KfMessage, KfSession
from guidebot.db.repo._dialect import insert_for, is_postgres
from guidebot.db.types import UTCDateTime
from guidebot.db.writes import ByDialect, Write

SEND_LIMIT = 5
# Statements built once (their compiled form is cached): the per-message path runs them for
# every message of a burst.
_MESSAGES = KfMessage.__table__  # type: ignore[attr-defined]
_SESSIONS = KfSession.__table__  # type: ignore[attr-defined]
_INSERT_MESSAGES = ByDialect({
    name: dialect_insert(_MESSAGES).on_conflict_do_nothing(index_elements=["tenant", "msgid"])
    .returning(_MESSAGES.c.msgid)
    for name, dialect_insert in (("sqlite", sqlite.insert), ("postgresql", postgresql.insert))})
_SESSION_ROW = ByDialect({
    name: dialect_insert(_SESSIONS).values(
        tenant=bindparam("t"), open_kfid=bindparam("k"), external_userid=bindparam("u"),
        last_customer_at=bindparam("at", type_=UTCDateTime()), sent=0,
        updated_at=bindparam("now", type_=UTCDateTime()))
    .on_conflict_do_nothing(index_elements=["tenant", "open_kfid", "external_userid"])
    for name, dialect_insert in (("sqlite", sqlite.insert), ("postgresql", postgresql.insert))})
_SESSION_KEY = and_(_SESSIONS.c.tenant == bindparam("t"), _SESSIONS.c.open_kfid == bindparam("k"),
                    _SESSIONS.c.external_userid == bindparam("u"))
_CUSTOMER_WROTE = (update(_SESSIONS).where(
    _SESSION_KEY, _SESSIONS.c.last_customer_at <= bindparam("at", type_=UTCDateTime()))
    .values(last_customer_at=bindparam("at", type_=UTCDateTime()), sent=0,
            updated_at=bindparam("now", type_=UTCDateTime())))
_RESERVE = (update(_SESSIONS).where(
    _SESSION_KEY, _SESSIONS.c.sent < SEND_LIMIT,
    _SESSIONS.c.last_customer_at >= bindparam("since", type_=UTCDateTime()))
    .values(sent=_SESSIONS.c.sent + 1, updated_at=bindparam("now", type_=UTCDateTime())))
_RELEASE = (update(_SESSIONS).where(_SESSION_KEY, _SESSIONS.c.sent > 0)
            .values(sent=_SESSIONS.c.sent - 1))
_OPEN = or_(_MESSAGES.c.status == "pending",
            and_(_MESSAGES.c.status == "working",
                 _MESSAGES.c.handled_at < bindparam("stale_before", type_=UTCDateTime())))
_OPEN_IDS = (select(_MESSAGES.c.id).where(
    _MESSAGES.c.tenant == bindparam("t"), _MESSAGES.c.open_kfid == bindparam("k"), _OPEN)
    .order_by(_MESSAGES.c.send_time, _MESSAGES.c.id))
_CLAIM = (update(_MESSAGES).where(_MESSAGES.c.id.in_(bindparam("ids", expanding=True)), _OPEN)
          .values(status="working", handled_at=bindparam("now", type_=UTCDateTime()))
          .returning(_MESSAGES.c.id))
_FINISH = (update(_MESSAGES).where(_MESSAGES.c.id == bindparam("message_id"))
           .values(status=bindparam("new_status"), route=bindparam("new_route"),
                   reason=bindparam("new_reason"), guide=bindparam("new_guide"),
                   handled_at=bindparam("now", type_=UTCDateTime())))


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
    connection = await session.connection()
    stmt = _INSERT_MESSAGES.variants[connection.dialect.name]
    return list((await connection.execute(stmt, list(rows))).scalars())


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


async def open_message_ids(session: AsyncSession, *, tenant: str, open_kfid: str,
                           stale_before: datetime) -> list[int]:
    """The ids `pending_messages` would return, in the same order (a cheap first look)."""
    result = await session.execute(_OPEN_IDS, {"t": tenant, "k": open_kfid,
                                               "stale_before": stale_before})
    return [int(i) for i in result.scalars()]


async def claim_messages(session: AsyncSession, *, message_ids: Sequence[int], now: datetime,
                         stale_before: datetime) -> list[KfMessage]:
    """`claim_message` for several at once: the messages claimed now (another worker has the
    rest), in (send_time, id) order."""
    if not message_ids:
        return []
    result = await session.execute(_CLAIM, {"ids": list(message_ids), "now": now,
                                            "stale_before": stale_before})
    claimed = [int(i) for i in result.scalars()]
    if not claimed:
        return []
    stmt = (select(KfMessage).where(KfMessage.id.in_(claimed))
            .order_by(KfMessage.send_time, KfMessage.id))  # type: ignore[arg-type]
    return list((await session.execute(stmt)).scalars())


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


def finished(*, message_id: int, status: str, route: str, reason: str, guide: str | None,
             now: datetime) -> Write:
    """finish_message as a deferred write (a batch's outcomes go in one transaction)."""
    return Write(_FINISH, {"message_id": message_id, "new_status": status,
                           "new_route": route[:16], "new_reason": reason[:128],
                           "new_guide": guide, "now": now})


async def messages_of(session: AsyncSession, *, tenant: str,
                      external_userid: str | None = None) -> Sequence[KfMessage]:
    stmt = select(KfMessage).where(KfMessage.tenant == tenant)
    if external_userid is not None:
        stmt = stmt.where(KfMessage.external_userid == external_userid)
    return list((await session.execute(stmt.order_by(KfMessage.send_time,  # type: ignore[arg-type]
                                                     KfMessage.id))).scalars())


async def handed_message(session: AsyncSession, *, tenant: str, msgid: str,
                         guide: str) -> KfMessage | None:
    """The customer message whose handoff went to `guide` (status handoff), or went to
    another servicer and was transferred to `guide` afterwards (a session_status_change
    event naming them as the new servicer), if any."""
    stmt = select(KfMessage).where(KfMessage.tenant == tenant, KfMessage.msgid == msgid,
                                   KfMessage.status == "handoff")
    handed = (await session.execute(stmt.limit(1))).scalars().first()
    if handed is None or handed.guide == guide:
        return handed
    moved = select(KfMessage.id).where(
        KfMessage.tenant == tenant, KfMessage.open_kfid == handed.open_kfid,
        KfMessage.external_userid == handed.external_userid,
        KfMessage.event_type == "session_status_change", KfMessage.servicer_userid == guide,
        KfMessage.send_time >= handed.send_time)  # type: ignore[operator]
    return handed if (await session.execute(moved.limit(1))).first() is not None else None


async def latest_messages(session: AsyncSession, *, tenant: str, external_userid: str,
                          limit: int) -> list[KfMessage]:
    """The customer's latest 微信客服 messages, oldest first."""
    stmt = (select(KfMessage)
            .where(KfMessage.tenant == tenant, KfMessage.external_userid == external_userid)
            .order_by(KfMessage.send_time.desc(), KfMessage.id.desc())  # type: ignore[attr-defined,union-attr]
            .limit(limit))
    return list(reversed((await session.execute(stmt)).scalars().all()))


def customer_wrote(*, tenant: str, open_kfid: str, external_userid: str, at: datetime,
                   now: datetime) -> list[Write]:
    """A new customer message restarts the 48 h window and the 5-message count (one call per
    new message: send_time has whole seconds, so one in the same second counts too); as
    deferred writes, so a page's messages are recorded in one go, in order."""
    params = {"t": tenant, "k": open_kfid, "u": external_userid, "at": at, "now": now}
    return [Write(_SESSION_ROW, params), Write(_CUSTOMER_WROTE, params)]


async def reserve_send(session: AsyncSession, *, tenant: str, open_kfid: str,
                       external_userid: str, since: datetime, now: datetime) -> bool:
    """Count one more message if fewer than 5 went out since a customer message at or after
    `since` (48 h ago); False: sending would break WeCom's rule."""
    result = await session.execute(_RESERVE, {"t": tenant, "k": open_kfid,
                                              "u": external_userid, "since": since, "now": now})
    return bool(result.rowcount)  # type: ignore[attr-defined]


def release_send(*, tenant: str, open_kfid: str, external_userid: str) -> Write:
    """A reserved message WeCom did not take back into the count (a deferred write)."""
    return Write(_RELEASE, {"t": tenant, "k": open_kfid, "u": external_userid})


async def customers(session: AsyncSession, *, tenant: str,
                    external_userids: Sequence[str]) -> dict[str, Customer]:
    """The 客户联系 customers among these ids."""
    if not external_userids:
        return {}
    stmt = select(Customer).where(Customer.tenant == tenant,
                                  Customer.external_userid.in_(list(external_userids)))
    return {c.external_userid: c for c in (await session.execute(stmt)).scalars()}


async def kf_unionids(session: AsyncSession, *, tenant: str,
                      kf_userids: Sequence[str]) -> dict[str, str]:
    """The unionids stored for kf customers (kf/customer/batchget's, from earlier messages)."""
    if not kf_userids:
        return {}
    stmt = select(KfCustomer.external_userid, KfCustomer.unionid).where(
        KfCustomer.tenant == tenant,
        KfCustomer.external_userid.in_(list(kf_userids)))  # type: ignore[attr-defined]
    return {str(u): str(n) for u, n in (await session.execute(stmt)).all()}


async def remember_unionids(session: AsyncSession, *, tenant: str, unionids: dict[str, str],
                            at: datetime) -> None:
    """Store kf customers' unionids (kf customer → unionid); one stored before stays."""
    if unionids:
        stmt = insert_for(session, KfCustomer).on_conflict_do_nothing(
            index_elements=["tenant", "external_userid"])
        await session.execute(stmt, [{"tenant": tenant, "external_userid": u, "unionid": n,
                                      "seen_at": at} for u, n in unionids.items()])


async def customers_by_unionid(session: AsyncSession, *, tenant: str,
                               unionids: Sequence[str]) -> dict[str, str]:
    """`customer_by_unionid` for several: unionid → the earliest contact's external_userid."""
    if not unionids:
        return {}
    stmt = (select(Customer.unionid, Customer.external_userid)
            .where(Customer.tenant == tenant, Customer.unionid.in_(list(unionids)))
            .order_by(Customer.created_at.desc()))  # type: ignore[arg-type]
    return {str(u): str(e) for u, e in (await session.execute(stmt)).all()}


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


# -- 接待时效 (chat/reply_times.py) ---------------------------------------------------------

def _handed() -> Any:
    """A turn may start here: a handoff (to a servicer or the pool) or a session_status_change
    naming a new servicer (a take from the pool, a transfer)."""
    return or_(KfMessage.status == "handoff",
               and_(KfMessage.event_type == "session_status_change",
                    KfMessage.servicer_userid != ""))


async def handed_conversations(session: AsyncSession, *, tenant: str, since: datetime,
                               until: datetime) -> list[tuple[str, str]]:
    """(open_kfid, external_userid) of the conversations handed (or taken from the pool,
    or transferred) in [since, until) (the handed message's or the event's send_time)."""
    stmt = (select(KfMessage.open_kfid, KfMessage.external_userid).distinct()
            .where(KfMessage.tenant == tenant, _handed(),
                   KfMessage.send_time >= since, KfMessage.send_time < until))  # type: ignore[operator]
    return [(str(k), str(u)) for k, u in (await session.execute(stmt)).all()]


async def live_handoffs(session: AsyncSession, *, tenant: str,
                        since: datetime) -> dict[tuple[str, str], datetime]:
    """The conversations ever handed (or taken from the pool, or transferred) whose customer
    wrote at or after `since`: (open_kfid, external_userid) → where a walk of it starts, the
    latest handoff's send_time (else the latest such event's)."""
    wrote = (select(KfMessage.open_kfid, KfMessage.external_userid).distinct()
             .where(KfMessage.tenant == tenant, KfMessage.origin == 3,
                    KfMessage.send_time >= since)  # type: ignore[operator]
             .subquery())
    handoff_at = case((KfMessage.status == "handoff", KfMessage.send_time))
    stmt = (select(KfMessage.open_kfid, KfMessage.external_userid,
                   func.coalesce(func.max(handoff_at), func.max(KfMessage.send_time)))
            .join(wrote, and_(wrote.c.open_kfid == KfMessage.open_kfid,
                              wrote.c.external_userid == KfMessage.external_userid))
            .where(KfMessage.tenant == tenant, _handed())
            .group_by(KfMessage.open_kfid, KfMessage.external_userid))
    return {(str(k), str(u)): _utc(at) for k, u, at in (await session.execute(stmt)).all()}


def _utc(value: Any) -> datetime:
    """An aggregate's datetime (SQLite hands text or a naive value back) as aware UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


async def conversation_messages(session: AsyncSession, *, tenant: str,
                                conversations: Sequence[tuple[str, str]],
                                since: datetime) -> list[KfMessage]:
    """The messages of these conversations sent at or after `since`, in send_time order."""
    wanted = set(conversations)
    stmt = (select(KfMessage)
            .where(KfMessage.tenant == tenant,
                   KfMessage.external_userid.in_(sorted({u for _, u in wanted})),  # type: ignore[attr-defined]
                   KfMessage.send_time >= since)  # type: ignore[operator]
            .order_by(KfMessage.send_time, KfMessage.id))  # type: ignore[arg-type]
    return [m for m in (await session.execute(stmt)).scalars()
            if (m.open_kfid, m.external_userid) in wanted]


async def since_latest_handoff(session: AsyncSession, *, tenant: str, open_kfid: str,
                               external_userid: str) -> list[KfMessage]:
    """The conversation's messages from its latest handoff (status handoff) or
    session_status_change event naming a new servicer on, in send_time order; [] without
    either. (An event of the session's end, or of a change_type not in the facts, starts
    nothing: read from the handoff before it, it is seen all the same.)"""
    conversation = (KfMessage.tenant == tenant, KfMessage.external_userid == external_userid,
                    KfMessage.open_kfid == open_kfid)
    latest = (select(func.max(KfMessage.send_time))
              .where(*conversation, _handed()).scalar_subquery())
    stmt = (select(KfMessage).where(*conversation, KfMessage.send_time >= latest)  # type: ignore[operator]
            .order_by(KfMessage.send_time, KfMessage.id))  # type: ignore[arg-type]
    return list((await session.execute(stmt)).scalars())


async def since_latest_handoff_record(session: AsyncSession, *, tenant: str, open_kfid: str,
                                      external_userid: str,
                                      before: datetime) -> list[KfMessage]:
    """The conversation's messages sent up to `before`, from its latest handoff record
    (status handoff: guidebot's, or WeCom's own that intake recorded) on, in send_time order;
    [] without one."""
    conversation = (KfMessage.tenant == tenant, KfMessage.external_userid == external_userid,
                    KfMessage.open_kfid == open_kfid,
                    KfMessage.send_time <= before)  # type: ignore[operator]
    latest = (select(func.max(KfMessage.send_time))
              .where(*conversation, KfMessage.status == "handoff").scalar_subquery())
    stmt = (select(KfMessage).where(*conversation, KfMessage.send_time >= latest)  # type: ignore[operator]
            .order_by(KfMessage.send_time, KfMessage.id))  # type: ignore[arg-type]
    return list((await session.execute(stmt)).scalars())
