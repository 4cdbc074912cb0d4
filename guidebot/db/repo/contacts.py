"""Queries for tenants, stores, guides, customers, follow relations and bindings."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import (
    DESCRIPTION_MAX,
    REMARK_MAX,
    Binding,
    ChannelCode,
    Customer,
    Follow,
    FollowEvent,
    Guide,
    Store,
    Tenant,
)
from guidebot.db.repo._dialect import insert_for, is_postgres
from guidebot.db.types import utcnow
from guidebot.db.writes import ByDialect, execute, execute_many

# The statements of a contact add, built once: the add path runs them for every add of a
# burst, and a statement built per call costs more than SQLite's own work (compiling, cache
# keys, ORM units of work).
_GUIDES = Guide.__table__  # type: ignore[attr-defined]
_CUSTOMERS = Customer.__table__  # type: ignore[attr-defined]
_FOLLOWS = Follow.__table__  # type: ignore[attr-defined]
_BINDINGS = Binding.__table__  # type: ignore[attr-defined]
_STORES = Store.__table__  # type: ignore[attr-defined]


_DIALECTS = (("sqlite", sqlite), ("postgresql", postgresql))


def _ignoring(table: Any, keys: list[str]) -> ByDialect:
    return ByDialect({name: d.insert(table).on_conflict_do_nothing(index_elements=keys)
                      for name, d in _DIALECTS})


_NEW_GUIDE = _ignoring(_GUIDES, ["tenant", "userid"])
_NEW_CUSTOMER = _ignoring(_CUSTOMERS, ["tenant", "external_userid"])
_GUIDE_STORE = (update(_GUIDES).where(_GUIDES.c.tenant == bindparam("t"),
                                      _GUIDES.c.userid == bindparam("u"))
                .values(store_id=bindparam("store")))
_FOLLOW_SET = ("status", "state", "channel_code_id", "added_at", "ended_at")
_UPSERT_FOLLOW = ByDialect({name: (lambda ins: ins.on_conflict_do_update(
    index_elements=["tenant", "guide", "external_userid"],
    set_={c: ins.excluded[c] for c in _FOLLOW_SET}))(d.insert(_FOLLOWS))
    for name, d in _DIALECTS})
_NEW_FOLLOW_EVENT = FollowEvent.__table__.insert()  # type: ignore[attr-defined]
_NEW_BINDING = _BINDINGS.insert()
async def _insert_ignore(session: AsyncSession, table: Any, keys: list[str],
                         **values: Any) -> None:
    stmt = insert_for(session, table).values(**values).on_conflict_do_nothing(index_elements=keys)
    await session.execute(stmt)


async def ensure_tenant(session: AsyncSession, *, tenant: str, corp_id: str) -> None:
    await _insert_ignore(session, Tenant, ["id"], id=tenant, corp_id=corp_id,
                         created_at=utcnow())


async def ensure_store(session: AsyncSession, *, tenant: str, store_id: str,
                       name: str = "") -> None:
    await _insert_ignore(session, Store, ["tenant", "store_id"], tenant=tenant,
                         store_id=store_id, name=name, created_at=utcnow())
    if name:
        await session.execute(update(Store).where(Store.tenant == tenant,
                                                  Store.store_id == store_id).values(name=name))


async def ensure_guide(session: AsyncSession, *, tenant: str, userid: str,
                       store_id: str | None = None, name: str = "") -> None:
    await execute(session, _NEW_GUIDE, {
        "tenant": tenant, "userid": userid, "name": name, "store_id": store_id,
        "created_at": utcnow(), "active": True, "wecom_status": None, "directory_at": None})
    if store_id and not name:
        await execute(session, _GUIDE_STORE, {"t": tenant, "u": userid, "store": store_id})
        return
    changes: dict[str, Any] = {}
    if store_id:
        changes["store_id"] = store_id
    if name:
        changes["name"] = name
    if changes:
        await session.execute(update(Guide).where(Guide.tenant == tenant,
                                                  Guide.userid == userid).values(**changes))


async def ensure_customer(session: AsyncSession, *, tenant: str, external_userid: str) -> None:
    """Create on first sight; on PostgreSQL also lock the row to serialize per customer."""
    await ensure_customers(session, tenant=tenant, external_userids=[external_userid])


async def get_customer(session: AsyncSession, *, tenant: str,
                       external_userid: str) -> Customer | None:
    return await session.get(Customer, (tenant, external_userid))


PROFILE_FIELDS = ("name", "unionid", "avatar", "corp_name", "contact_type", "gender")
_SET_PROFILE = (update(_CUSTOMERS).where(_CUSTOMERS.c.tenant == bindparam("p_tenant"),
                                         _CUSTOMERS.c.external_userid == bindparam("p_customer"))
                .values(profile_fetched_at=bindparam("p_at"),
                        **{f: bindparam(f"p_{f}") for f in PROFILE_FIELDS}))


_SET_REMARK = (update(_FOLLOWS).where(_FOLLOWS.c.tenant == bindparam("r_tenant"),
                                           _FOLLOWS.c.guide == bindparam("r_guide"),
                                           _FOLLOWS.c.external_userid
                                           == bindparam("r_customer"))
               .values(remark=bindparam("r_remark"), description=bindparam("r_description")))


async def set_remarks(session: AsyncSession, *, tenant: str,
                      rows: Sequence[tuple[str, str, str, str]]) -> None:
    """Relations' remark and description, (guide, external_userid, remark, description)
    per row, cut to the columns' bounds; a relation guidebot does not have is left alone."""
    await execute_many(session, _SET_REMARK, [
        {"r_tenant": tenant, "r_guide": g, "r_customer": c, "r_remark": r[:REMARK_MAX],
         "r_description": d[:DESCRIPTION_MAX]} for g, c, r, d in rows])


async def set_profile(session: AsyncSession, *, tenant: str, external_userid: str,
                      profile: dict[str, Any], at: datetime) -> None:
    await set_profiles(session, rows=[(tenant, external_userid, profile, at)])


async def set_profiles(session: AsyncSession, *,
                       rows: Sequence[tuple[str, str, dict[str, Any], datetime]]) -> None:
    """Customers' profiles from WeCom, (tenant, external_userid, fields of PROFILE_FIELDS,
    fetched at) per row."""
    await execute_many(session, _SET_PROFILE, [
        {"p_tenant": t, "p_customer": c, "p_at": at,
         **{f"p_{f}": profile[f] for f in PROFILE_FIELDS}} for t, c, profile, at in rows])


async def customers_without_profile(session: AsyncSession, *, tenant: str,
                                    limit: int = 100) -> list[str]:
    stmt = (select(Customer.external_userid).where(
        Customer.tenant == tenant, Customer.profile_fetched_at.is_(None))  # type: ignore[union-attr]
        .limit(limit))
    return list((await session.execute(stmt)).scalars())


async def upsert_follow(session: AsyncSession, *, tenant: str, guide: str, external_userid: str,
                        status: str, state: str, channel_code_id: int | None,
                        at: datetime) -> None:
    await upsert_follows(session, rows=[{
        "tenant": tenant, "guide": guide, "external_userid": external_userid, "status": status,
        "state": state, "channel_code_id": channel_code_id, "added_at": at}])


async def end_follow(session: AsyncSession, *, tenant: str, guide: str, external_userid: str,
                     status: str, at: datetime) -> bool:
    """Mark a relation ended; False when we never saw it (it is then recorded as ended)."""
    result = await session.execute(update(Follow).where(
        Follow.tenant == tenant, Follow.guide == guide, Follow.external_userid == external_userid
    ).values(status=status, ended_at=at))
    return bool(getattr(result, "rowcount", 0))


async def insert_ended_follow(session: AsyncSession, *, tenant: str, guide: str,
                              external_userid: str, status: str, at: datetime) -> None:
    await _insert_ignore(session, Follow, ["tenant", "guide", "external_userid"], tenant=tenant,
                         guide=guide, external_userid=external_userid, status=status, state="",
                         added_at=at, ended_at=at)


async def add_follow_event(session: AsyncSession, *, tenant: str, guide: str,
                           external_userid: str, action: str, at: datetime,
                           detail: str = "", inbox_id: int | None = None) -> None:
    await add_follow_events(session, rows=[{
        "tenant": tenant, "guide": guide, "external_userid": external_userid, "action": action,
        "at": at, "detail": detail, "inbox_id": inbox_id}])


async def last_added_at(session: AsyncSession, *, tenant: str, guide: str, external_userid: str,
                        until: datetime) -> datetime | None:
    """When the guide last added the customer (an add or half-add recorded at or before
    `until`); None when guidebot recorded no add of this relation."""
    stmt = (select(FollowEvent.at).where(
        FollowEvent.tenant == tenant, FollowEvent.guide == guide,
        FollowEvent.external_userid == external_userid,
        FollowEvent.action.in_(("added", "half_added")),  # type: ignore[attr-defined]
        FollowEvent.at <= until)  # type: ignore[operator]
        .order_by(FollowEvent.at.desc()).limit(1))  # type: ignore[attr-defined]
    return (await session.execute(stmt)).scalar_one_or_none()


async def follow_event_counts(session: AsyncSession, *, tenant: str, start: datetime,
                              end: datetime, actions: Sequence[str]) -> dict[str, dict[str, int]]:
    """How many follow events of each of `actions` each guide has in [start, end): guide →
    action → count (guides and actions without one left out). It reads the span of the
    tenant's events by ix_follow_events_tenant_at; the morning digest reads it once a day."""
    stmt = (select(FollowEvent.guide, FollowEvent.action, func.count())
            .where(FollowEvent.tenant == tenant,
                   FollowEvent.action.in_(list(actions)),  # type: ignore[attr-defined]
                   FollowEvent.at >= start, FollowEvent.at < end)  # type: ignore[operator]
            .group_by(FollowEvent.guide, FollowEvent.action))
    counts: dict[str, dict[str, int]] = {}
    for guide, action, n in (await session.execute(stmt)).all():
        counts.setdefault(guide, {})[action] = int(n)
    return counts


async def guide_deletions(session: AsyncSession, *, tenant: str, start: datetime,
                          end: datetime, limit: int) -> list[dict[str, Any]]:
    """The deletions a guide made of a customer (action deleted_by_guide; a transfer's
    handover is `transferred`) in [start, end), newest first, at most `limit`: guide and their
    name, the customer and their name, when. Read by ix_follow_events_tenant_at."""
    stmt = (select(FollowEvent.id, FollowEvent.guide, Guide.name, FollowEvent.external_userid,
                   Customer.name, FollowEvent.at)
            .outerjoin(Guide, (Guide.tenant == FollowEvent.tenant)
                       & (Guide.userid == FollowEvent.guide))
            .outerjoin(Customer, (Customer.tenant == FollowEvent.tenant)
                       & (Customer.external_userid == FollowEvent.external_userid))
            .where(FollowEvent.tenant == tenant, FollowEvent.action == "deleted_by_guide",
                   FollowEvent.at >= start, FollowEvent.at < end)  # type: ignore[operator]
            .order_by(FollowEvent.at.desc(), FollowEvent.id.desc())  # type: ignore[attr-defined,union-attr]
            .limit(limit))
    return [{"id": i, "guide": g, "guide_name": gn or "", "external_userid": e,
             "customer_name": cn or "", "at": at}
            for i, g, gn, e, cn, at in (await session.execute(stmt)).all()]


async def list_follows(session: AsyncSession, *, tenant: str,
                       external_userid: str) -> Sequence[Follow]:
    stmt = (select(Follow).where(Follow.tenant == tenant,
                                 Follow.external_userid == external_userid)
            # two adds in the same second (WeCom's CreateTime) in the guide's order, not in
            # whichever order their callbacks were stored
            .order_by(Follow.added_at, Follow.guide))  # type: ignore[arg-type]
    return list((await session.execute(stmt)).scalars())


class BindingRow(NamedTuple):
    """A binding as read (the columns of `bindings`)."""

    id: int
    tenant: str
    external_userid: str
    guide: str
    started_at: datetime
    ended_at: datetime | None
    end_reason: str


async def list_bindings(session: AsyncSession, *, tenant: str,
                        external_userid: str) -> list[BindingRow]:
    return (await bindings_of(session, tenant=tenant,
                              external_userids=[external_userid]))[external_userid]


async def add_binding(session: AsyncSession, *, tenant: str, external_userid: str, guide: str,
                      at: datetime) -> None:
    await add_bindings(session, rows=[(tenant, external_userid, guide, at)])


async def end_binding(session: AsyncSession, *, binding_id: int, at: datetime | None,
                      reason: str) -> None:
    await end_bindings(session, rows=[(binding_id, at, reason)])


async def list_guides(session: AsyncSession, *, tenant: str) -> list[dict[str, Any]]:
    active = (select(Follow.guide, func.count().label("n")).where(
        Follow.tenant == tenant, Follow.status == "active").group_by(Follow.guide).subquery())
    stmt = (select(Guide, func.coalesce(active.c.n, 0))
            .outerjoin(active, active.c.guide == Guide.userid)
            .where(Guide.tenant == tenant).order_by(Guide.userid))  # type: ignore[arg-type]
    rows = (await session.execute(stmt)).all()
    return [{"guide": g, "active_customers": int(n)} for g, n in rows]


async def list_stores(session: AsyncSession, *, tenant: str) -> Sequence[Store]:
    stmt = select(Store).where(Store.tenant == tenant).order_by(Store.store_id)  # type: ignore[arg-type]
    return list((await session.execute(stmt)).scalars())


async def get_store(session: AsyncSession, *, tenant: str, store_id: str) -> Store | None:
    return await session.get(Store, (tenant, store_id))


async def guide_names(session: AsyncSession, *, tenant: str,
                      userids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """(guide's name, their store's name) per userid; unknown guides get empty names."""
    stmt = (select(Guide.userid, Guide.name, Store.name)
            .outerjoin(Store, (Store.tenant == Guide.tenant) & (Store.store_id == Guide.store_id))
            .where(Guide.tenant == tenant, Guide.userid.in_(list(userids))))  # type: ignore[attr-defined]
    found = {u: (g or "", st or "") for u, g, st in (await session.execute(stmt)).all()}
    return {u: found.get(u, ("", "")) for u in userids}


async def get_guide(session: AsyncSession, *, tenant: str, userid: str) -> Guide | None:
    return await session.get(Guide, (tenant, userid))


async def count_follows(session: AsyncSession, *, tenant: str, status: str = "active") -> int:
    stmt = select(func.count()).select_from(Follow).where(Follow.tenant == tenant,
                                                          Follow.status == status)
    return int((await session.execute(stmt)).scalar_one())


async def delete_guide(session: AsyncSession, *, tenant: str, userid: str) -> None:
    """Remove a guide row (only one just added and not referenced: a refused channel code)."""
    await session.execute(delete(Guide).where(Guide.tenant == tenant, Guide.userid == userid))


async def delete_store(session: AsyncSession, *, tenant: str, store_id: str) -> None:
    await session.execute(delete(Store).where(Store.tenant == tenant,
                                              Store.store_id == store_id))


# --- A batch of adds (RelationService.record_adds): each statement once for the batch. ---

_END_BINDING = (update(_BINDINGS).where(_BINDINGS.c.id == bindparam("binding_id"))
                .values(ended_at=bindparam("ended_at"), end_reason=bindparam("reason")))
_CUSTOMER_LOCKS = (select(_CUSTOMERS.c.external_userid)
                   .where(_CUSTOMERS.c.tenant == bindparam("t"),
                          _CUSTOMERS.c.external_userid.in_(bindparam("ids", expanding=True)))
                   .order_by(_CUSTOMERS.c.external_userid).with_for_update())
_CODES = (select(ChannelCode.__table__)  # type: ignore[attr-defined]
          .where(ChannelCode.__table__.c.tenant == bindparam("t"),  # type: ignore[attr-defined]
                 ChannelCode.__table__.c.id.in_(  # type: ignore[attr-defined]
                     bindparam("ids", expanding=True))))
_BINDINGS_OF_MANY = (select(_BINDINGS)
                     .where(_BINDINGS.c.tenant == bindparam("t"),
                            _BINDINGS.c.external_userid.in_(bindparam("ids", expanding=True)))
                     .order_by(_BINDINGS.c.started_at, _BINDINGS.c.id))
_GUIDES_OF = (select(_GUIDES.c.userid, _GUIDES.c.name, _GUIDES.c.store_id)
              .where(_GUIDES.c.tenant == bindparam("t"),
                     _GUIDES.c.userid.in_(bindparam("ids", expanding=True))))
_STORE_NAMES = (select(_STORES.c.store_id, _STORES.c.name)
                .where(_STORES.c.tenant == bindparam("t"),
                       _STORES.c.store_id.in_(bindparam("ids", expanding=True))))


async def channel_codes(session: AsyncSession, *, tenant: str,
                        code_ids: Sequence[int]) -> dict[int, Any]:
    """The tenant's channel codes by id (rows, columns as attributes)."""
    if not code_ids:
        return {}
    rows = await execute(session, _CODES, {"t": tenant, "ids": sorted(set(code_ids))})
    return {row.id: row for row in rows}


async def ensure_guides(session: AsyncSession, *,
                        rows: Sequence[tuple[str, str, str | None]]) -> None:
    """`ensure_guide` for (tenant, userid, store_id) rows: create, and set the store named."""
    if not rows:
        return
    now = utcnow()
    await execute_many(session, _NEW_GUIDE, [
        {"tenant": t, "userid": u, "name": "", "store_id": s, "created_at": now,
         "active": True, "wecom_status": None, "directory_at": None} for t, u, s in rows])
    stores = [{"t": t, "u": u, "store": s} for t, u, s in rows if s]
    if stores:
        await execute_many(session, _GUIDE_STORE, stores)


async def ensure_customers(session: AsyncSession, *, tenant: str,
                           external_userids: Sequence[str]) -> None:
    """`ensure_customer` for many: create on first sight; on PostgreSQL lock the rows (in
    one order, so two processes never wait for each other crosswise)."""
    ids = sorted(set(external_userids))
    if not ids:
        return
    now = utcnow()
    await execute_many(session, _NEW_CUSTOMER, [
        {"tenant": tenant, "external_userid": c, "name": "", "unionid": None, "avatar": "",
         "corp_name": "", "contact_type": None, "gender": None, "profile_fetched_at": None,
         "created_at": now} for c in ids])
    if is_postgres(session):
        await execute(session, _CUSTOMER_LOCKS, {"t": tenant, "ids": ids})


async def upsert_follows(session: AsyncSession, *, rows: Sequence[dict[str, Any]]) -> None:
    """`upsert_follow` for many rows (the keys of `upsert_follow`'s parameters)."""
    await execute_many(session, _UPSERT_FOLLOW, [
        {**row, "ended_at": None} for row in rows])


async def add_follow_events(session: AsyncSession, *, rows: Sequence[dict[str, Any]]) -> None:
    """`add_follow_event` for many rows (tenant, guide, external_userid, action, at,
    detail, inbox_id)."""
    await execute_many(session, _NEW_FOLLOW_EVENT, list(rows))


async def bindings_of(session: AsyncSession, *, tenant: str,
                      external_userids: Sequence[str]) -> dict[str, list[BindingRow]]:
    """Each customer's bindings, oldest first."""
    found: dict[str, list[BindingRow]] = {c: [] for c in external_userids}
    if not found:
        return found
    for row in await execute(session, _BINDINGS_OF_MANY, {"t": tenant, "ids": sorted(found)}):
        found[row.external_userid].append(BindingRow(*row))
    return found


async def end_bindings(session: AsyncSession, *,
                       rows: Sequence[tuple[int, datetime | None, str]]) -> None:
    """`end_binding` for (binding_id, at, reason) rows."""
    await execute_many(session, _END_BINDING, [
        {"binding_id": i, "ended_at": at, "reason": reason} for i, at, reason in rows])


async def add_bindings(session: AsyncSession, *,
                       rows: Sequence[tuple[str, str, str, datetime]]) -> None:
    """`add_binding` for (tenant, external_userid, guide, at) rows."""
    await execute_many(session, _NEW_BINDING, [
        {"tenant": t, "external_userid": c, "guide": g, "started_at": at, "ended_at": None,
         "end_reason": ""} for t, c, g, at in rows])


async def guides_and_stores(session: AsyncSession, *, tenant: str, userids: Sequence[str],
                            store_ids: Sequence[str]
                            ) -> tuple[dict[str, tuple[str, str | None]], dict[str, str]]:
    """The guides' (name, store_id) by userid, and the names of their stores and of
    `store_ids`, by store id."""
    guides = {row.userid: (row.name or "", row.store_id) for row in await execute(
        session, _GUIDES_OF, {"t": tenant, "ids": sorted(set(userids))})} if userids else {}
    wanted = {*store_ids, *(s for _, s in guides.values() if s)}
    stores = {row.store_id: row.name or "" for row in await execute(
        session, _STORE_NAMES, {"t": tenant, "ids": sorted(wanted)})} if wanted else {}
    return guides, stores
