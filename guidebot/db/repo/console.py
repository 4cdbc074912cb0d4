"""Queries behind the console's record pages: guides and stores, customer search, orders,
the outbox's pending and dead rows (and putting a dead row back in the queue), a customer's
微信客服 conversation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import (
    BLANKED_PAYLOAD,
    CorpTag,
    Customer,
    CustomerTag,
    Follow,
    Guide,
    OutboxItem,
    Store,
)
from guidebot.db.models_commerce import Order
from guidebot.db.models_kf import KfCustomer, KfMessage, OptOut
from guidebot.db.models_sop import SopTask
from guidebot.db.models_stats import StatsCustomer
from guidebot.db.repo import field_match
from guidebot.db.repo import opt_outs as opt_outs_repo


async def guide_rows(session: AsyncSession, *, tenant: str) -> list[dict[str, Any]]:
    """Every guide with their store, current customers and 群发 task confirmation counts."""
    active = (select(Follow.guide, func.count().label("n"))
              .where(Follow.tenant == tenant, Follow.status == "active")
              .group_by(Follow.guide).subquery())
    delivered = SopTask.status.in_(["sent", "confirmed"])
    tasks = (select(SopTask.guide, func.sum(case((delivered, 1), else_=0)).label("sent"),
                    func.sum(case((SopTask.status == "confirmed", 1), else_=0)).label("ok"))
             .where(SopTask.tenant == tenant,
                    SopTask.kind.in_(("guide_task", "group_task")))  # type: ignore[attr-defined]
             .group_by(SopTask.guide).subquery())
    stmt = (select(Guide.userid, Guide.name, Guide.store_id, Store.name,
                   func.coalesce(active.c.n, 0), func.coalesce(tasks.c.sent, 0),
                   func.coalesce(tasks.c.ok, 0), Guide.active)
            .outerjoin(Store, (Store.tenant == Guide.tenant) & (Store.store_id == Guide.store_id))
            .outerjoin(active, active.c.guide == Guide.userid)
            .outerjoin(tasks, tasks.c.guide == Guide.userid)
            .where(Guide.tenant == tenant).order_by(Guide.userid))
    return [{"guide": u, "name": n or "", "store_id": s or "", "store_name": sn or "",
             "customers": int(c), "tasks_sent": int(ts), "tasks_confirmed": int(tc),
             "active": bool(a)}
            for u, n, s, sn, c, ts, tc, a in (await session.execute(stmt)).all()]


async def guide_names(session: AsyncSession, *, tenant: str) -> dict[str, str]:
    """Each guide's name by userid (guides without a name left out)."""
    stmt = select(Guide.userid, Guide.name).where(Guide.tenant == tenant, Guide.name != "")
    return {u: n for u, n in (await session.execute(stmt)).all() if n}


async def store_names(session: AsyncSession, *, tenant: str) -> dict[str, str]:
    stmt = select(Store.store_id, Store.name).where(Store.tenant == tenant)
    return {s: n or "" for s, n in (await session.execute(stmt)).all()}


async def tag_names(session: AsyncSession, *, tenant: str) -> list[str]:
    stmt = (select(CorpTag.name).where(CorpTag.tenant == tenant, CorpTag.deleted.is_(False))
            .distinct().order_by(CorpTag.name))
    return list((await session.execute(stmt)).scalars())


FOLLOWING = ("active", "half")  # a relation the customer still has
CUSTOMER_STATUSES = ("following", "lost", "opted_out")


@dataclass(frozen=True)
class Conditions:
    """A saved segment's conditions beyond the customers page's search (each only when
    given): corp tag ids the customer carries (all of, any of, none of), a live relation
    with one of `guides` or with a guide of one of `stores`, bought at all or never
    (`purchased` "yes" / "no"), no order paid since `quiet_since`, and in the overview's
    customer `layer` (new, active, dormant, lost) by the facts the statistics keep per
    customer, `layer_since` the (new, active) bounds of today's layers; and meeting every
    profile field condition in `fields` (客户资料, repo/field_match.py)."""

    tags_all: tuple[str, ...] = ()
    tags_any: tuple[str, ...] = ()
    tags_none: tuple[str, ...] = ()
    guides: tuple[str, ...] = ()
    stores: tuple[str, ...] = ()
    purchased: str = ""
    quiet_since: datetime | None = None
    layer: str = ""
    layer_since: tuple[datetime, datetime] | None = None
    fields: tuple[field_match.FieldMatch, ...] = ()


def _layer(layer: str, since: tuple[datetime, datetime], tenant: str) -> Any:
    """Whether the customer is in the layer (stats/definitions: new = following and first
    added since since[0]; active = following, not new, paid since since[1]; dormant =
    following, neither; lost = following no guide), read from stats_customers by key."""
    c = StatsCustomer
    known = select(c.external_userid).where(
        c.tenant == tenant, c.external_userid == Customer.external_userid,
        c.first_added_at.is_not(None))  # type: ignore[union-attr]
    if layer == "lost":
        return known.where(c.following == 0).exists()
    known = known.where(c.following > 0)
    if layer == "new":
        return known.where(c.first_added_at >= since[0]).exists()  # type: ignore[operator]
    known = known.where(c.first_added_at < since[0])  # type: ignore[operator]
    paid = c.last_paid_at >= since[1]  # type: ignore[operator]
    if layer == "active":
        return known.where(paid).exists()
    return known.where(or_(c.last_paid_at.is_(None), ~paid)).exists()  # type: ignore[union-attr]


def _conditions(stmt: Any, *, tenant: str, more: Conditions) -> Any:
    def tagged(ids: Sequence[str]) -> Any:
        """The customer carries one of these tags: a tag deleted in WeCom is carried by no
        one, whatever rows the mirror still holds for it (so tags_any/tags_all naming it
        match accordingly, and tags_none ignores it)."""
        live = select(CorpTag.tag_id).where(
            CorpTag.tenant == tenant, CorpTag.deleted.is_(False),  # type: ignore[attr-defined]
            CorpTag.tag_id.in_(list(ids)))  # type: ignore[attr-defined]
        return select(CustomerTag.external_userid).where(
            CustomerTag.tenant == tenant, CustomerTag.external_userid == Customer.external_userid,
            CustomerTag.tag_id.in_(live))  # type: ignore[attr-defined]
    for tag_id in more.tags_all:
        stmt = stmt.where(tagged([tag_id]).exists())
    if more.tags_any:
        stmt = stmt.where(tagged(more.tags_any).exists())
    if more.tags_none:
        stmt = stmt.where(~tagged(more.tags_none).exists())
    live = (select(Follow.id).where(Follow.tenant == tenant,
                                    Follow.external_userid == Customer.external_userid,
                                    Follow.status.in_(FOLLOWING)))  # type: ignore[attr-defined]
    if more.guides:
        stmt = stmt.where(live.where(Follow.guide.in_(more.guides)).exists())  # type: ignore[attr-defined]
    if more.stores:
        of_stores = select(Guide.userid).where(Guide.tenant == tenant,
                                               Guide.store_id.in_(more.stores))  # type: ignore[union-attr]
        stmt = stmt.where(live.where(Follow.guide.in_(of_stores)).exists())  # type: ignore[attr-defined]
    bought = select(Order.order_no).where(Order.tenant == tenant,
                                          Order.external_userid == Customer.external_userid)
    if more.purchased == "yes":
        stmt = stmt.where(bought.exists())
    elif more.purchased == "no":
        stmt = stmt.where(~bought.exists())
    if more.quiet_since is not None:
        stmt = stmt.where(bought.exists(),
                          ~bought.where(Order.paid_at >= more.quiet_since).exists())
    if more.layer and more.layer_since is not None:
        stmt = stmt.where(_layer(more.layer, more.layer_since, tenant))
    for match in more.fields:
        stmt = stmt.where(field_match.matches(tenant, match))
    return stmt


def _customer_filter(stmt: Any, *, tenant: str, text: str, tag: str, guide: str,
                     status: str, more: Conditions | None = None) -> Any:
    """The search's conditions on Customer: name, id, the state of their add or a guide's
    WeCom remark or description of them containing `text`, carrying the live tag named `tag`,
    following `guide` (now or before), and in `status` (following: at least one relation
    still live; lost: relations, none live; opted_out: opted out in 微信客服), each only when
    given."""
    if text:
        like = f"%{text.replace('%', '').replace('_', '')}%"
        remark = select(Follow.id).where(
            Follow.tenant == tenant, Follow.external_userid == Customer.external_userid,
            or_(Follow.state.ilike(like), Follow.remark.ilike(like),  # type: ignore[attr-defined]
                Follow.description.ilike(like)))  # type: ignore[attr-defined]
        stmt = stmt.where(or_(Customer.name.ilike(like), Customer.external_userid.ilike(like),
                              remark.exists()))
    if tag:
        tagged = (select(CustomerTag.external_userid)
                  .join(CorpTag, (CorpTag.tenant == CustomerTag.tenant)
                        & (CorpTag.tag_id == CustomerTag.tag_id))
                  .where(CustomerTag.tenant == tenant, CorpTag.name == tag,
                         CorpTag.deleted.is_(False),  # type: ignore[attr-defined]
                         CustomerTag.external_userid == Customer.external_userid))
        stmt = stmt.where(tagged.exists())
    if guide:
        follows = select(Follow.id).where(
            Follow.tenant == tenant, Follow.guide == guide,
            Follow.external_userid == Customer.external_userid)
        stmt = stmt.where(follows.exists())
    if status:
        def relations(*live: bool) -> Any:
            found = select(Follow.id).where(Follow.tenant == tenant,
                                            Follow.external_userid == Customer.external_userid)
            return found.where(Follow.status.in_(FOLLOWING)) if live else found
        if status == "following":
            stmt = stmt.where(relations(True).exists())
        elif status == "lost":
            stmt = stmt.where(relations().exists(), ~relations(True).exists())
        else:
            stmt = stmt.where(select(OptOut.external_userid).where(
                OptOut.tenant == tenant,
                OptOut.external_userid == Customer.external_userid).exists())
    return stmt if more is None else _conditions(stmt, tenant=tenant, more=more)


def _added(stmt: Any, added: tuple[datetime | None, datetime | None]) -> Any:
    if added[0] is not None:
        stmt = stmt.where(Customer.created_at >= added[0])
    if added[1] is not None:
        stmt = stmt.where(Customer.created_at < added[1])
    return stmt


async def count_customers(session: AsyncSession, *, tenant: str, status: str,
                          added: tuple[datetime | None, datetime | None],
                          more: Conditions) -> int:
    """How many customers a segment's conditions find now (`search_customers`' filter)."""
    stmt = _customer_filter(select(func.count()).select_from(Customer)
                            .where(Customer.tenant == tenant), tenant=tenant, text="", tag="",
                            guide="", status=status, more=more)
    return int((await session.execute(_added(stmt, added))).scalar_one())


async def search_customers(session: AsyncSession, *, tenant: str, text: str, tag: str,
                           guide: str, limit: int, status: str = "",
                           added: tuple[datetime | None, datetime | None] = (None, None),
                           before: tuple[datetime, str] | None = None,
                           more: Conditions | None = None) -> list[dict[str, Any]]:
    """A page of the customers the search finds (`_customer_filter`; arrived in [added) when
    its ends are given), newest first: those who arrived before `before` (arrival time,
    external_userid) when given, at most `limit`, each with their guides (relations in the
    order they began), tags and opt-out."""
    stmt = _customer_filter(select(Customer).where(Customer.tenant == tenant), tenant=tenant,
                            text=text, tag=tag, guide=guide, status=status, more=more)
    stmt = _added(stmt, added)
    if before is not None:
        at, external_userid = before  # compared column by column: binds take the column's type
        stmt = stmt.where(Customer.created_at <= at,
                          or_(Customer.created_at < at,
                              Customer.external_userid < external_userid))
    stmt = stmt.order_by(Customer.created_at.desc(),
                         Customer.external_userid.desc()).limit(limit)
    customers = list((await session.execute(stmt)).scalars())
    ids = [c.external_userid for c in customers]
    follows: dict[str, list[dict[str, Any]]] = {}
    tags: dict[str, list[str]] = {}
    opted_out: set[str] = set()
    if ids:
        rows = await session.execute(
            select(Follow.external_userid, Follow.guide, Follow.status, Follow.added_at,
                   Follow.ended_at)
            .where(Follow.tenant == tenant, Follow.external_userid.in_(ids))  # type: ignore[attr-defined]
            .order_by(Follow.added_at, Follow.id))
        for ext, g, st, added, ended in rows.all():
            follows.setdefault(ext, []).append(
                {"guide": g, "status": st, "added_at": added, "ended_at": ended})
        named = await session.execute(
            select(CustomerTag.external_userid, CorpTag.name)
            .join(CorpTag, (CorpTag.tenant == CustomerTag.tenant)
                  & (CorpTag.tag_id == CustomerTag.tag_id))
            .where(CustomerTag.tenant == tenant, CorpTag.deleted.is_(False),
                   CustomerTag.external_userid.in_(ids))  # type: ignore[attr-defined]
            .distinct().order_by(CustomerTag.external_userid, CorpTag.name))
        for ext, name in named.all():
            tags.setdefault(ext, []).append(name)
        opted_out = await opt_outs_repo.opted_out_among(session, tenant=tenant,
                                                        external_userids=ids)
    found = []
    for c in customers:
        theirs = follows.get(c.external_userid, [])
        live = any(f["status"] in FOLLOWING for f in theirs)
        found.append({
            "external_userid": c.external_userid, "name": c.name, "added_at": c.created_at,
            "follows": theirs,
            "guides": [f["guide"] if f["status"] in FOLLOWING else f"({f['guide']})"
                       for f in theirs],
            "status": "following" if live else ("lost" if theirs else "none"),
            "lost_at": None if live else max(
                (f["ended_at"] for f in theirs if f["ended_at"] is not None), default=None),
            "tags": tags.get(c.external_userid, []),
            "opted_out": c.external_userid in opted_out})
    return found


async def orders_between(session: AsyncSession, *, tenant: str, start: datetime,
                         end: datetime, limit: int,
                         before: tuple[datetime, str] | None = None) -> Sequence[Order]:
    """Orders paid in [start, end), latest first (ties by order number, descending): those
    paid before `before` (paid_at, order_no) when given, at most `limit`."""
    stmt = select(Order).where(Order.tenant == tenant, Order.paid_at >= start,
                               Order.paid_at < end)
    if before is not None:
        at, order_no = before  # compared column by column: binds take the column's type
        stmt = stmt.where(Order.paid_at <= at,
                          or_(Order.paid_at < at, Order.order_no < order_no))
    stmt = stmt.order_by(Order.paid_at.desc(), Order.order_no.desc()).limit(limit)
    return (await session.execute(stmt)).scalars().all()


async def customer_names(session: AsyncSession, *, tenant: str,
                         external_userids: Sequence[str]) -> dict[str, str]:
    """The names of these customers (those with one), by external_userid."""
    if not external_userids:
        return {}
    stmt = select(Customer.external_userid, Customer.name).where(
        Customer.tenant == tenant, Customer.external_userid.in_(sorted(set(external_userids))))
    return {e: n for e, n in (await session.execute(stmt)).all() if n}


async def outbox_rows(session: AsyncSession, *, tenant: str, statuses: Sequence[str],
                      limit: int) -> Sequence[OutboxItem]:
    stmt = (select(OutboxItem).where(OutboxItem.tenant == tenant,
                                     OutboxItem.status.in_(list(statuses)))
            .order_by(OutboxItem.id.desc()).limit(limit))
    return (await session.execute(stmt)).scalars().all()


async def requeue_dead(session: AsyncSession, *, tenant: str, item_id: int,
                       now: datetime) -> bool:
    """A dead row back to failed and due now, with a fresh attempt count (the outbox retry
    job picks it up); False when the row is not this tenant's, not dead, or its payload was
    blanked by data retention (nothing left to send)."""
    stmt = (update(OutboxItem)
            .where(OutboxItem.id == item_id, OutboxItem.tenant == tenant,
                   OutboxItem.status == "dead", OutboxItem.payload != BLANKED_PAYLOAD)
            .values(status="failed", due_at=now, attempts=0, updated_at=now))
    result = await session.execute(stmt)
    return bool(getattr(result, "rowcount", 0))


async def dead_and_blanked(session: AsyncSession, *, tenant: str, item_id: int) -> bool:
    """Whether the row is this tenant's, dead, and its payload blanked by data retention."""
    stmt = select(OutboxItem.id).where(
        OutboxItem.id == item_id, OutboxItem.tenant == tenant, OutboxItem.status == "dead",
        OutboxItem.payload == BLANKED_PAYLOAD)
    return (await session.execute(stmt)).first() is not None


async def task_rows(session: AsyncSession, *, tenant: str, limit: int) -> Sequence[SopTask]:
    stmt = (select(SopTask).where(SopTask.tenant == tenant)
            .order_by(SopTask.id.desc()).limit(limit))
    return (await session.execute(stmt)).scalars().all()


async def conversation(session: AsyncSession, *, tenant: str, external_userid: str,
                       limit: int) -> list[KfMessage]:
    """The customer's latest 微信客服 messages (each with the route guidebot took), oldest
    first: under their own id, and under a kf id matched to them only by unionid."""
    by_unionid = (select(KfCustomer.external_userid)
                  .join(Customer, (Customer.tenant == KfCustomer.tenant)  # type: ignore[arg-type]
                        & (Customer.unionid == KfCustomer.unionid))
                  .where(Customer.tenant == tenant,
                         Customer.external_userid == external_userid))
    stmt = (select(KfMessage)
            .where(KfMessage.tenant == tenant,
                   (KfMessage.external_userid == external_userid)
                   | KfMessage.external_userid.in_(by_unionid))  # type: ignore[attr-defined]
            .order_by(KfMessage.send_time.desc(),  # type: ignore[attr-defined]
                      KfMessage.id.desc())  # type: ignore[union-attr]
            .limit(limit))
    return list(reversed((await session.execute(stmt)).scalars().all()))


def customer_matches(*, tenant: str, status: str,
                     added: tuple[datetime | None, datetime | None], more: Conditions,
                     external_userid: Any) -> Any:
    """Whether the customer `external_userid` (a column of the enclosing query) is among
    those a segment's conditions find now (`count_customers`' filter) as a clause of
    another query (a drop's or an enrolment's audience)."""
    stmt = _customer_filter(select(Customer.external_userid).where(
        Customer.tenant == tenant, Customer.external_userid == external_userid),
        tenant=tenant, text="", tag="", guide="", status=status, more=more)
    return _added(stmt, added).exists()
