"""Queries for the daily statistics: reading the source tables past a watermark, adding to
the daily cells, and the aggregates the console and the metrics API show."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Integer, String, bindparam, case, delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from guidebot.db.models import ChannelCode, FollowEvent, Guide
from guidebot.db.models_commerce import LedgerEntry
from guidebot.db.models_groups import GroupCustomerChange
from guidebot.db.models_stats import (
    StatsCustomer,
    StatsDaily,
    StatsGroupCustomer,
    StatsGroupDaily,
    StatsLayerAdds,
    StatsLayerBuyers,
    StatsOrderMark,
    StatsWatermark,
)
from guidebot.db.repo._dialect import insert_for, is_postgres
from guidebot.db.types import UTCDateTime

COUNTS = ("adds_code", "adds_other", "deletions", "new_customers_code", "new_customers_other",
          "first_purchases", "repurchases", "orders", "gmv_fen", "orders_new", "gmv_new_fen",
          "orders_all", "gmv_all_fen", "commission_fen")
# Customer group members (models_stats.StatsGroupDaily), per owner and day.
GROUP_COUNTS = ("group_joins", "group_leaves", "group_handed_in", "group_handed_out")


async def lock_tenant(session: AsyncSession, *, tenant: str) -> None:
    """One upkeep per tenant at a time across processes (SQLite has one writer anyway)."""
    if is_postgres(session):
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                              {"k": f"guidebot-stats:{tenant}"})


async def load_watermarks(session: AsyncSession, *, tenant: str) -> None:
    """Read every watermark of `tenant` in one query, so get_watermark finds them in the
    session (one read however many sources there are)."""
    rows = (await session.execute(select(StatsWatermark).where(
        StatsWatermark.tenant == tenant))).scalars().all()
    session.info["watermarks"] = {(w.tenant, w.source): w for w in rows}  # held: the
    # session's identity map keeps objects only while something refers to them


async def get_watermark(session: AsyncSession, *, tenant: str, source: str) -> StatsWatermark:
    held: dict[tuple[str, str], StatsWatermark] = session.info.get("watermarks", {})
    found = held.get((tenant, source)) or await session.get(StatsWatermark, (tenant, source))
    if found is None:
        found = StatsWatermark(tenant=tenant, source=source)
        session.add(found)
    return found


SOURCES: dict[str, Any] = {"follow_events": FollowEvent, "ledger": LedgerEntry,
                           "group_changes": GroupCustomerChange}


async def rows_after(session: AsyncSession, *, source: str, after_id: int, limit: int,
                     tenant: str | None = None, upto: int | None = None) -> Sequence[Any]:
    """Rows of a source table past an id, in id order (every tenant's unless one is named)."""
    table = SOURCES[source]
    stmt = select(*table.__table__.c).where(table.id > after_id)
    if tenant is not None:
        stmt = stmt.where(table.tenant == tenant)
    if upto is not None:
        stmt = stmt.where(table.id <= upto)
    return (await session.execute(stmt.order_by(table.id).limit(limit))).all()


async def rows_with_ids(session: AsyncSession, *, source: str,
                        ids: Sequence[int]) -> Sequence[Any]:
    table = SOURCES[source]
    stmt = select(*table.__table__.c).where(table.id.in_(list(ids))).order_by(table.id)
    return (await session.execute(stmt)).all()


async def guide_stores(session: AsyncSession, *, tenant: str) -> dict[str, str]:
    stmt = select(Guide.userid, Guide.store_id).where(Guide.tenant == tenant)
    return {g: s or "" for g, s in (await session.execute(stmt)).all()}


async def code_stores(session: AsyncSession, *, tenant: str) -> dict[int, str]:
    stmt = select(ChannelCode.id, ChannelCode.store_id).where(ChannelCode.tenant == tenant)
    return {int(i): s or "" for i, s in (await session.execute(stmt)).all()}


async def add_daily(session: AsyncSession, *, tenant: str,
                    cells: Sequence[tuple[str, str, str, dict[str, int]]],
                    group: bool = False) -> None:
    """Add each cell's counts (day, store, guide, counts) to its row, creating it at zero
    first: one statement for every cell (`group`: the customer group cells)."""
    if not cells:
        return
    model, names = (StatsGroupDaily, GROUP_COUNTS) if group else (StatsDaily, COUNTS)
    stmt = insert_for(session, model)
    table = model.__table__  # type: ignore[attr-defined]
    stmt = stmt.on_conflict_do_update(
        index_elements=["tenant", "day", "store_id", "guide"],
        set_={name: table.c[name] + stmt.excluded[name] for name in names})
    await session.execute(stmt, [
        {"tenant": tenant, "day": day, "store_id": store, "guide": guide,
         **{name: counts.get(name, 0) for name in names}}
        for day, store, guide, counts in cells])


CUSTOMER_FACTS = ("first_added_at", "via_code", "following", "orders", "gmv_fen",
                  "first_order_no", "first_paid_at", "last_paid_at")


async def get_customers(session: AsyncSession, *, tenant: str,
                        external_userids: Sequence[str]) -> dict[str, Any]:
    """The stored facts (plain rows) of those of these customers seen before."""
    found: dict[str, Any] = {}
    wanted = sorted(set(external_userids))
    table = StatsCustomer.__table__  # type: ignore[attr-defined]
    for i in range(0, len(wanted), 500):
        stmt = select(*table.c).where(table.c.tenant == tenant,
                                      table.c.external_userid.in_(wanted[i:i + 500]))
        found.update({r.external_userid: r for r in (await session.execute(stmt)).all()})
    return found


async def put_customers(session: AsyncSession, *, tenant: str,
                        facts: Sequence[dict[str, Any]]) -> None:
    """Write customers' facts (external_userid and CUSTOMER_FACTS each): one statement."""
    if not facts:
        return
    stmt = insert_for(session, StatsCustomer)
    stmt = stmt.on_conflict_do_update(
        index_elements=["tenant", "external_userid"],
        set_={name: stmt.excluded[name] for name in CUSTOMER_FACTS})
    await session.execute(stmt, [{"tenant": tenant, **f} for f in facts])


async def clear(session: AsyncSession, *, tenant: str) -> None:
    for table in (StatsDaily, StatsCustomer, StatsOrderMark, StatsWatermark, StatsLayerAdds,
                  StatsLayerBuyers, StatsGroupDaily, StatsGroupCustomer):
        await session.execute(delete(table).where(table.tenant == tenant))


async def get_group_customers(session: AsyncSession, *, tenant: str,
                              keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """In how many of the owner's groups each (owner, customer) is, as counted so far."""
    found: dict[tuple[str, str], int] = {}
    c = StatsGroupCustomer
    by_owner: dict[str, list[str]] = {}
    for owner, customer in sorted(set(keys)):
        by_owner.setdefault(owner, []).append(customer)
    for owner, customers in by_owner.items():
        for i in range(0, len(customers), 500):
            stmt = select(c.external_userid, c.groups).where(
                c.tenant == tenant, c.owner == owner,
                c.external_userid.in_(customers[i:i + 500]))  # type: ignore[attr-defined]
            found.update({(owner, e): int(n) for e, n in (await session.execute(stmt)).all()})
    return found


async def put_group_customers(session: AsyncSession, *, tenant: str,
                              counts: dict[tuple[str, str], int]) -> None:
    if not counts:
        return
    stmt = insert_for(session, StatsGroupCustomer)
    stmt = stmt.on_conflict_do_update(index_elements=["tenant", "owner", "external_userid"],
                                      set_={"groups": stmt.excluded.groups})
    await session.execute(stmt, [{"tenant": tenant, "owner": o, "external_userid": e,
                                  "groups": n} for (o, e), n in counts.items()])


def _group_sums() -> list[Any]:
    return [func.coalesce(func.sum(getattr(StatsGroupDaily, name)), 0).label(name)
            for name in GROUP_COUNTS]


def _group_total() -> Any:
    g = StatsGroupDaily
    return func.coalesce(func.sum(g.group_joins - g.group_leaves + g.group_handed_in
                                  - g.group_handed_out), 0)


async def group_per_day(session: AsyncSession, *, tenant: str, day_from: str,
                        day_to: str) -> tuple[list[dict[str, Any]], int]:
    """The group cells summed per day over the range, and the group members at its end
    (every cell up to its last day)."""
    g = StatsGroupDaily
    stmt = (select(g.day, *_group_sums())
            .where(g.tenant == tenant, g.day >= day_from, g.day <= day_to)
            .group_by(g.day).order_by(g.day))
    rows = [dict(row._mapping) for row in (await session.execute(stmt)).all()]
    total = (await session.execute(select(_group_total()).where(
        g.tenant == tenant, g.day <= day_to))).scalar_one()
    return rows, int(total)


async def group_per_key(session: AsyncSession, *, tenant: str, day_from: str, day_to: str,
                        key: str, store_id: str | None = None) -> dict[str, dict[str, int]]:
    """Per guide or store (key = "guide" | "store_id"): the group cells summed over the range
    and `group_members`, the total at its end; with `store_id`, that store's cells only."""
    g = StatsGroupDaily
    column = getattr(g, key)
    in_range = [func.coalesce(func.sum(case((g.day >= day_from, getattr(g, name)), else_=0)),
                              0).label(name) for name in GROUP_COUNTS]
    stmt = (select(column.label("key"), *in_range, _group_total().label("group_members"))
            .where(g.tenant == tenant, g.day <= day_to).group_by(column))
    if store_id is not None:
        stmt = stmt.where(g.store_id == store_id)
    return {str(r.key): {n: int(v) for n, v in r._mapping.items() if n != "key"}
            for r in (await session.execute(stmt)).all()}


def _sums() -> list[Any]:
    return [func.coalesce(func.sum(getattr(StatsDaily, name)), 0).label(name)
            for name in COUNTS]


async def per_day(session: AsyncSession, *, tenant: str, day_from: str,
                  day_to: str) -> list[dict[str, Any]]:
    stmt = (select(StatsDaily.day, *_sums())
            .where(StatsDaily.tenant == tenant, StatsDaily.day >= day_from,
                   StatsDaily.day <= day_to)
            .group_by(StatsDaily.day).order_by(StatsDaily.day))
    return [dict(row._mapping) for row in (await session.execute(stmt)).all()]


async def per_key(session: AsyncSession, *, tenant: str, day_from: str, day_to: str,
                  key: str, store_id: str | None = None) -> list[dict[str, Any]]:
    """Totals per guide or per store (key = "guide" | "store_id") over the days; with
    `store_id`, of that store's cells only (a guide's figures credited in that store)."""
    column = getattr(StatsDaily, key)
    stmt = (select(column.label("key"), *_sums())
            .where(StatsDaily.tenant == tenant, StatsDaily.day >= day_from,
                   StatsDaily.day <= day_to)
            .group_by(column))
    if store_id is not None:
        stmt = stmt.where(StatsDaily.store_id == store_id)
    return [dict(row._mapping) for row in (await session.execute(stmt)).all()]


async def add_layers(session: AsyncSession, *, tenant: str, adds: dict[Any, int],
                     buyers: dict[Any, int]) -> None:
    """Add customers to (or, negative, take them from) the layer cells (stats/layers.py)."""
    for table, keys, moves in ((StatsLayerAdds, ("add_day", "following", "tier"), adds),
                               (StatsLayerBuyers, ("paid_day", "add_day"), buyers)):
        rows = [{"tenant": tenant, **dict(zip(keys, cell, strict=True)), "customers": n}
                for cell, n in moves.items() if n]
        if not rows:
            continue
        stmt = insert_for(session, table)
        stmt = stmt.on_conflict_do_update(
            index_elements=["tenant", *keys],
            set_={"customers": table.__table__.c.customers + stmt.excluded.customers})
        await session.execute(stmt, rows)


async def layer_counts(session: AsyncSession, *, tenant: str, bounds: dict[str, str],
                       tiers: Sequence[str]) -> dict[str, int]:
    """Customers known by the range's end in each layer and value tier, and the base (known
    before its start), summed from the layer cells (definitions: stats/definitions)."""
    a = StatsLayerAdds
    known = a.add_day <= bounds["to"]

    def count(cond: Any) -> Any:
        return func.coalesce(func.sum(case((cond, a.customers), else_=0)), 0)

    columns = [count(a.following & (a.add_day >= bounds["new_from"])).label("new"),
               count(~a.following).label("lost"),
               func.coalesce(func.sum(a.customers), 0).label("known"),
               count(a.add_day < bounds["from"]).label("base"),
               *[count(a.tier == name).label(f"tier_{name}") for name in tiers]]
    row = (await session.execute(select(*columns).where(a.tenant == tenant, known))).one()
    out = {k: int(v) for k, v in row._mapping.items()}
    b = StatsLayerBuyers
    active = select(func.coalesce(func.sum(b.customers), 0)).where(
        b.tenant == tenant, b.paid_day >= bounds["active_from"],
        b.add_day < bounds["new_from"])
    out["active"] = int((await session.execute(active)).scalar_one())
    out["dormant"] = out["known"] - out["new"] - out["active"] - out["lost"]
    return out


# Set-based counting: each statement below counts a whole batch in SQL. Days are in the
# tenant's time zone: `Offsets` are the zone's UTC offsets over the batch's instants
# ((from, seconds) pairs, the first from None), computed in Python from zoneinfo and written
# into the statement as a CASE, so SQLite and PostgreSQL give the days Python would.

Offsets = Sequence[tuple[datetime | None, int]]


def _stamp(at: datetime, pg: bool) -> str:
    naive = at.astimezone(UTC).replace(tzinfo=None)
    return f"TIMESTAMP '{naive.isoformat(' ')}'" if pg else f"'{naive:%Y-%m-%d %H:%M:%S.%f}'"


def local_day(session: AsyncSession, column: str, offsets: Offsets) -> str:
    """SQL for the local day (YYYY-MM-DD) of a UTC timestamp column."""
    pg = is_postgres(session)

    def shifted(seconds: int) -> str:
        if pg:
            return f"to_char({column} + interval '{seconds} seconds', 'YYYY-MM-DD')"
        return f"date({column}, '{seconds:+d} seconds')"

    if len(offsets) == 1:
        return shifted(offsets[0][1])
    whens = " ".join(f"WHEN {column} < {_stamp(start, pg)} THEN {shifted(before)}"
                     for (_, before), (start, _) in zip(offsets, offsets[1:], strict=False)
                     if start is not None)
    return f"(CASE {whens} ELSE {shifted(offsets[-1][1])} END)"


Tiers = Sequence[tuple[str, int]]  # (name, floor in fen), highest first; below: the last


def _tier(column: str, tiers: Tiers, below: str) -> str:
    whens = " ".join(f"WHEN {column} >= {int(floor)} THEN '{name}'" for name, floor in tiers)
    return f"(CASE {whens} ELSE '{below}' END)"


def _bytewise(session: AsyncSession, column: str) -> str:
    """Strings compared code point by code point, as Python does (not by locale)."""
    return f'{column} COLLATE "C"' if is_postgres(session) else column


def _add_to(table: str, keys: Sequence[str], names: Sequence[str]) -> str:
    sets = ", ".join(f"{n} = {table}.{n} + excluded.{n}" for n in names)
    return f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}"


_DAILY_KEYS = ("tenant", "day", "store_id", "guide")
_DAILY_INSERT = f"INSERT INTO stats_daily ({', '.join((*_DAILY_KEYS, *COUNTS))}) "
_DAILY_UPSERT = _add_to("stats_daily", _DAILY_KEYS, COUNTS)


def _daily_select(counts: dict[str, str]) -> str:
    return ", ".join(f"{counts.get(name, '0')} AS {name}" for name in COUNTS)


_SPAN = {"lo": UTCDateTime(), "hi": UTCDateTime()}


async def paid_span(session: AsyncSession, *, tenant: str) -> tuple[datetime, datetime]:
    """The first and last payment of a tenant's orders (two index reads)."""
    stmt = text("""
        SELECT (SELECT min(paid_at) FROM commerce_orders WHERE tenant = :tenant) AS lo,
               (SELECT max(paid_at) FROM commerce_orders WHERE tenant = :tenant) AS hi"""
                ).columns(**_SPAN)  # apart, each is one index read on SQLite
    row = (await session.execute(stmt, {"tenant": tenant})).one()
    return row.lo, row.hi


async def claim_orders(session: AsyncSession, *, tenant: str, at: datetime | None, key: str,
                       limit: int, guide_rules: Collection[str], offsets: Offsets,
                       since: datetime | None = None) -> int:
    """Copy the next orders not yet counted (arrived after (at, key); or, with `since`, those
    that arrived in [since, at]) into stats_batch_orders, in one statement; returns how many.
    Of a customer's orders in the batch, the earliest (paid_at, then order_no) is marked
    first (is_first) if it was paid before the customer's first purchase counted so far;
    via_code marks the orders of customers a channel code brought. `offsets` must cover
    every order's payment (paid_span)."""
    if since is not None:
        window = "AND o.received_at >= :since AND o.received_at <= :at"
    elif at is not None:
        window = "AND o.received_at >= :at AND (o.received_at > :at OR o.order_no > :key)"
    else:
        window = ""
    rules = ", ".join(f"'{r}'" for r in sorted(guide_rules))
    c_no, o_no, p_no = (_bytewise(session, c) for c in ("c.first_order_no", "o.order_no",
                                                         "p.order_no"))
    stmt = text(f"""
        INSERT INTO stats_batch_orders (tenant, external_userid, paid_at, order_no,
            received_at, amount_fen, day, store_id, guide, guide_rule, is_first, via_code)
        SELECT p.tenant, p.external_userid, p.paid_at, p.order_no, p.received_at,
            p.amount_fen, {local_day(session, "p.paid_at", offsets)}, p.store_id, p.guide,
            p.guide_rule,
            CASE WHEN p.beats = 1 AND row_number() OVER (
                PARTITION BY p.external_userid ORDER BY p.paid_at, {p_no}) = 1
            THEN 1 ELSE 0 END, p.via_code
        FROM (
          SELECT o.tenant, coalesce(o.external_userid, '') AS external_userid, o.paid_at,
            o.order_no, o.received_at, o.amount_fen,
            coalesce(nullif(o.credited_store, ''), nullif(o.store_id, ''), '') AS store_id,
            coalesce(o.guide, '') AS guide,
            CASE WHEN o.rule IN ({rules}) THEN 1 ELSE 0 END AS guide_rule,
            CASE WHEN coalesce(o.external_userid, '') = '' THEN 0
                 WHEN c.first_order_no IS NULL OR c.first_paid_at > o.paid_at
                      OR (c.first_paid_at = o.paid_at AND {c_no} > {o_no}) THEN 1
                 ELSE 0 END AS beats,
            CASE WHEN coalesce(o.external_userid, '') <> '' AND c.via_code THEN 1
                 ELSE 0 END AS via_code
          FROM commerce_orders o
          LEFT JOIN stats_customers c ON c.tenant = o.tenant
              AND c.external_userid = o.external_userid
          WHERE o.tenant = :tenant {window} AND NOT EXISTS (
              SELECT 1 FROM stats_order_marks m WHERE m.tenant = o.tenant
              AND m.order_no = o.order_no)
          ORDER BY o.received_at, o.order_no LIMIT :limit) AS p""")
    params: dict[str, Any] = {"tenant": tenant, "limit": limit}
    if at is not None:
        stmt = stmt.bindparams(bindparam("at", type_=UTCDateTime()))
        params.update(at=at, key=key) if since is None else params.update(at=at)
    if since is not None:
        stmt = stmt.bindparams(bindparam("since", type_=UTCDateTime()))
        params["since"] = since
    result = await session.execute(stmt, params)
    return int(result.rowcount)  # type: ignore[attr-defined]


async def batch_last(session: AsyncSession, *, tenant: str) -> tuple[datetime, str]:
    """The (arrival, order_no) of the batch's last order: the new watermark."""
    stmt = text("""
        SELECT received_at, max(order_no) AS order_no FROM stats_batch_orders
        WHERE tenant = :tenant AND received_at = (
            SELECT max(received_at) FROM stats_batch_orders WHERE tenant = :tenant)
        GROUP BY received_at""").columns(
        received_at=UTCDateTime(), order_no=String())
    row = (await session.execute(stmt, {"tenant": tenant})).one()
    return row.received_at, row.order_no


async def batch_span(session: AsyncSession, *, tenant: str
                     ) -> tuple[datetime | None, datetime | None]:
    """The earliest and latest instant whose local day counting the batch needs: its orders'
    payments and its customers' first adds and last purchases."""
    stmt = text("""
        SELECT min(b.paid_at) AS b_lo, max(b.paid_at) AS b_hi FROM stats_batch_orders b
        WHERE b.tenant = :tenant""").columns(b_lo=UTCDateTime(), b_hi=UTCDateTime())
    batch = (await session.execute(stmt, {"tenant": tenant})).one()
    stmt = text("""
        SELECT min(c.first_added_at) AS a_lo, max(c.first_added_at) AS a_hi,
               min(c.last_paid_at) AS p_lo, max(c.last_paid_at) AS p_hi
        FROM stats_customers c WHERE c.tenant = :tenant AND c.external_userid IN (
            SELECT external_userid FROM stats_batch_orders WHERE tenant = :tenant)""").columns(
        a_lo=UTCDateTime(), a_hi=UTCDateTime(), p_lo=UTCDateTime(), p_hi=UTCDateTime())
    known = (await session.execute(stmt, {"tenant": tenant})).one()
    instants = [t for t in (*batch, *known) if t is not None]
    return (min(instants), max(instants)) if instants else (None, None)


async def count_batch(session: AsyncSession, *, tenant: str, offsets: Offsets, tiers: Tiers,
                      below: str) -> None:
    """Count the batch's orders: which is each customer's first purchase (the earliest by
    paid_at, then order_no: an order paid before the one counted first takes the title, and
    that one's cell turns its first purchase into a repurchase), the customers' facts and
    their moves between the layer cells, the daily cells and the marks; then empty the
    batch."""
    p = {"tenant": tenant}
    tier = _tier("c.gmv_fen", tiers, below)
    # The first purchases counted before that lost their title to an order of the batch.
    await session.execute(text(
        _DAILY_INSERT + "SELECT m.tenant, m.day, m.store_id, m.guide, "
        + _daily_select({"first_purchases": "-count(*)", "repurchases": "count(*)"}) + """
        FROM stats_batch_orders b
        JOIN stats_customers c ON c.tenant = b.tenant AND c.external_userid = b.external_userid
        JOIN stats_order_marks m ON m.tenant = c.tenant AND m.order_no = c.first_order_no
        WHERE b.tenant = :tenant AND b.is_first = 1
        GROUP BY m.tenant, m.day, m.store_id, m.guide""" + _DAILY_UPSERT), p)
    await _move_layers(session, tenant=tenant, offsets=offsets, sign=-1, tier=tier)
    await session.execute(text("""
        INSERT INTO stats_customers (tenant, external_userid, first_added_at, via_code,
            following, orders, gmv_fen, first_order_no, first_paid_at, last_paid_at)
        SELECT b.tenant, b.external_userid, NULL, false, 0, count(*), sum(b.amount_fen),
            max(CASE WHEN b.is_first = 1 THEN b.order_no END),
            max(CASE WHEN b.is_first = 1 THEN b.paid_at END), max(b.paid_at)
        FROM stats_batch_orders b WHERE b.tenant = :tenant AND b.external_userid <> ''
        GROUP BY b.tenant, b.external_userid
        ON CONFLICT (tenant, external_userid) DO UPDATE SET
          orders = stats_customers.orders + excluded.orders,
          gmv_fen = stats_customers.gmv_fen + excluded.gmv_fen,
          first_order_no = coalesce(excluded.first_order_no, stats_customers.first_order_no),
          first_paid_at = coalesce(excluded.first_paid_at, stats_customers.first_paid_at),
          last_paid_at = CASE WHEN stats_customers.last_paid_at IS NULL
                                OR excluded.last_paid_at > stats_customers.last_paid_at
                         THEN excluded.last_paid_at ELSE stats_customers.last_paid_at END"""), p)
    await _move_layers(session, tenant=tenant, offsets=offsets, sign=1, tier=tier)
    await session.execute(text(
        _DAILY_INSERT + "SELECT b.tenant, b.day, b.store_id, b.guide, " + _daily_select({
            "first_purchases": "sum(b.is_first)",
            "repurchases": "sum(CASE WHEN b.external_userid <> '' AND b.is_first = 0 "
                           "THEN 1 ELSE 0 END)",
            "orders": "sum(b.guide_rule)", "gmv_fen": "sum(b.guide_rule * b.amount_fen)",
            "orders_new": "sum(b.guide_rule * b.via_code)",
            "gmv_new_fen": "sum(b.guide_rule * b.via_code * b.amount_fen)",
            "orders_all": "count(*)", "gmv_all_fen": "sum(b.amount_fen)"})
        + " FROM stats_batch_orders b WHERE b.tenant = :tenant GROUP BY 1, 2, 3, 4"
        + _DAILY_UPSERT), p)
    await session.execute(text("""
        INSERT INTO stats_order_marks (tenant, order_no, day, store_id, guide)
        SELECT b.tenant, b.order_no, b.day, b.store_id, b.guide
        FROM stats_batch_orders b WHERE b.tenant = :tenant"""), p)
    await session.execute(text("DELETE FROM stats_batch_orders WHERE tenant = :tenant"), p)


async def _move_layers(session: AsyncSession, *, tenant: str, offsets: Offsets,
                       sign: int, tier: str) -> None:
    """Take the batch's customers out of their layer cells (sign -1) or put them in (+1)."""
    add_day = local_day(session, "c.first_added_at", offsets)
    paid_day = local_day(session, "c.last_paid_at", offsets)
    customers = """FROM stats_customers c WHERE c.tenant = :tenant
        AND c.first_added_at IS NOT NULL AND c.external_userid IN (
            SELECT external_userid FROM stats_batch_orders WHERE tenant = :tenant)"""
    p = {"tenant": tenant}
    await session.execute(text(
        f"INSERT INTO stats_layer_adds (tenant, add_day, following, tier, customers) "
        f"SELECT c.tenant, {add_day}, c.following > 0, {tier}, "
        f"{sign} * count(*) {customers} GROUP BY 1, 2, 3, 4"
        + _add_to("stats_layer_adds", ("tenant", "add_day", "following", "tier"),
                  ("customers",))), p)
    await session.execute(text(
        f"INSERT INTO stats_layer_buyers (tenant, paid_day, add_day, customers) "
        f"SELECT c.tenant, {paid_day}, {add_day}, {sign} * count(*) {customers} "
        f"AND c.following > 0 AND c.last_paid_at IS NOT NULL GROUP BY 1, 2, 3"
        + _add_to("stats_layer_buyers", ("tenant", "paid_day", "add_day"), ("customers",))),
        p)


async def id_runs_after(session: AsyncSession, *, source: str, after_id: int,
                        limit: int) -> list[tuple[int, int]]:
    """The next ids past `after_id` (at most `limit`, in id order) as runs of contiguous ids
    (first, last). Usually they are one run: then one aggregate over the ids is read, not
    every id."""
    table = SOURCES[source]
    ids = select(table.id.label("id")).where(table.id > after_id).order_by(table.id).limit(
        limit).subquery()
    n, lo, hi = (await session.execute(
        select(func.count(), func.min(ids.c.id), func.max(ids.c.id)))).one()
    if not n:
        return []
    if int(n) == int(hi) - int(lo) + 1:
        return [(int(lo), int(hi))]
    return runs_of([int(i) for i in (await session.execute(
        select(ids.c.id).order_by(ids.c.id))).scalars()])


def runs_of(ids: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted ids as runs of contiguous ids (first, last)."""
    out: list[tuple[int, int]] = []
    for i in ids:
        if out and out[-1][1] == i - 1:
            out[-1] = (out[-1][0], i)
        else:
            out.append((i, i))
    return out


async def ids_present(session: AsyncSession, *, source: str, ids: Sequence[int]) -> list[int]:
    table = SOURCES[source]
    stmt = select(table.id).where(table.id.in_(list(ids)))
    return [int(i) for i in (await session.execute(stmt)).scalars()]


def _in_runs(runs: Sequence[tuple[int, int]]) -> tuple[str, dict[str, int]]:
    """Ledger ids in these runs of contiguous ids (first, last), as one condition."""
    params: dict[str, int] = {}
    parts = []
    for i, (first, last) in enumerate(runs):
        params.update({f"first{i}": first, f"last{i}": last})
        parts.append(f"l.id BETWEEN :first{i} AND :last{i}")
    return "(" + " OR ".join(parts or ["1 = 0"]) + ")", params


async def ledger_span(session: AsyncSession, *, runs: Sequence[tuple[int, int]]
                      ) -> tuple[int, datetime | None, datetime | None]:
    """How many ledger entries have these ids, and the first and last created."""
    where, params = _in_runs(runs)
    stmt = text(f"SELECT count(*) AS n, min(l.created_at) AS lo, max(l.created_at) AS hi "
                f"FROM commerce_ledger l WHERE {where}").columns(n=Integer(), **_SPAN)
    row = (await session.execute(stmt, params)).one()
    return int(row.n), row.lo, row.hi


async def count_ledger(session: AsyncSession, *, tenant: str, offsets: Offsets,
                       runs: Sequence[tuple[int, int]]) -> None:
    """Add one tenant's ledger entries with these ids to their cells (day created, the
    guide's store, the guide), in one statement."""
    where, params = _in_runs(runs)
    day = local_day(session, "l.created_at", offsets)
    await session.execute(text(
        _DAILY_INSERT + f"SELECT l.tenant, {day}, coalesce(g.store_id, ''), l.guide, "
        + _daily_select({"commission_fen": "sum(l.amount_fen)"}) + f"""
        FROM commerce_ledger l
        LEFT JOIN guides g ON g.tenant = l.tenant AND g.userid = l.guide
        WHERE l.tenant = :tenant AND {where} GROUP BY 1, 2, 3, 4""" + _DAILY_UPSERT),
        {"tenant": tenant, **params})
