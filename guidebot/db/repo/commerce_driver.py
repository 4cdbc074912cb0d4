"""Set-based commerce I/O at the driver level for bulk attribution: no SQLAlchemy, no ORM.

The queries below run on a `BulkConnection`: the bulk transaction's own aiosqlite or asyncpg
connection (commerce_bulk.bulk_connection), or a bulk worker's reader (open_reader), skipping
SQLAlchemy's per-value type processing. Rows are tuples in the column orders below. Times are
compared and written in the connection's encoding (`encode`: the stored text on SQLite, naive
UTC on PostgreSQL — both sort like the times) and turned back into aware UTC datetimes with
`decode`. This module imports no SQLAlchemy, so a worker process starts quickly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

ORDER_COLUMNS = ("tenant", "order_no", "external_userid", "unionid", "openid", "store_id",
                 "tracking", "paid_at", "amount_fen", "rule", "guide", "credited_store",
                 "commission_fen", "rule_version_id", "evidence", "lines", "received_at")
TOUCH_COLUMNS = ("id", "tenant", "external_userid", "unionid", "openid", "guide", "token",
                 "kind", "sku", "category", "dur_s", "at")
ENTRY_COLUMNS = ("tenant", "key", "kind", "guide", "order_no", "refund_no", "amount_fen",
                 "period", "reason", "operator", "created_at")
# A touch as touches_of returns it; rows sort by (at, is an order's token, id), DESIGN §5.4.
TOUCH_FIELDS = ("at", "is_order", "id", "guide", "token", "kind", "external_userid",
                "unionid", "openid")
_TABLES = {"commerce_orders": ORDER_COLUMNS, "commerce_touches": TOUCH_COLUMNS,
           "commerce_ledger": ENTRY_COLUMNS}
BULK_CACHE_KIB = 131_072
_IN_BATCH = 10_000  # bound parameters per IN list (SQLite allows 32,766)


def _sqlite_time(at: datetime) -> str:
    """The stored text of a UTC time, as SQLAlchemy stores it (naive, microseconds)."""
    if at.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    if at.tzinfo is not UTC:
        at = at.astimezone(UTC)
    return at.isoformat(" ", "microseconds")[:26]  # without the "+00:00"


def _naive_utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return at.astimezone(UTC).replace(tzinfo=None)


def _decode(value: Any) -> datetime:
    if isinstance(value, str):
        try:  # the stored text is naive UTC; parsing it with the offset is 6× faster than
            return datetime.fromisoformat(value + "+00:00")  # adding tzinfo afterwards
        except ValueError:
            value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]


class InlineSqlite:
    """The aiosqlite calls BulkConnection makes, over a synchronous sqlite3 connection: an
    urgent-lane transaction run inline on the loop thread (guidebot/db/inline.py), such as the
    order intake's small batches. Every await completes at once, with no thread hop."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    @property
    def in_transaction(self) -> bool:
        return bool(self._connection.in_transaction)

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> Any:
        return self._connection.execute(sql, args)

    async def execute_fetchall(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        return list(self._connection.execute(sql, args).fetchall())

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> _Ran:
        return _Ran(self._connection.executemany(sql, rows))


class _Ran:
    """A statement already run, used as aiosqlite's `async with driver.executemany(…)`."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> Any:
        return self._cursor

    async def __aexit__(self, *_: object) -> None:
        self._cursor.close()


class BulkConnection:
    """The session's driver connection, with its dialect's placeholders and time encoding."""

    def __init__(self, driver: Any, postgres: bool) -> None:
        self.driver = driver
        self.postgres = postgres
        self.encode = _naive_utc if postgres else _sqlite_time
        self.decode = _decode

    def sql(self, text_: str) -> str:
        """SQL written with `?` placeholders, as the driver wants it ($1, $2, … for asyncpg)."""
        if not self.postgres:
            return text_
        parts = text_.split("?")
        return parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], start=1))

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        if self.postgres:
            return list(await self.driver.fetch(self.sql(sql), *args))
        return list(await self.driver.execute_fetchall(sql, args))

    async def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if self.postgres:
            await self.driver.executemany(self.sql(sql), rows)
            return
        # Closed on the driver's thread: dropping the cursor here would reset its cached
        # statement from this thread while the driver's thread may be running it.
        async with self.driver.executemany(sql, rows):
            pass

    async def copy(self, table: str, rows: Sequence[Sequence[Any]]) -> None:
        """Insert rows in the table's column order: COPY on PostgreSQL, executemany here."""
        columns = _TABLES[table]
        if self.postgres:
            await self.driver.copy_records_to_table(table, records=rows, columns=columns)
            return
        await self.run_many(f"INSERT INTO {table} ({', '.join(columns)}) "
                            f"VALUES ({', '.join('?' * len(columns))})", rows)

    def in_list(self, column: str, values: Sequence[Any],
                type_: str = "varchar") -> tuple[str, list[Any]]:
        if self.postgres:
            return f"{column} = ANY(?::{type_}[])", [list(values)]
        return f"{column} IN ({','.join('?' * len(values))})", list(values)


def batches(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), _IN_BATCH):
        yield values[start:start + _IN_BATCH]


async def _order_nos(conn: BulkConnection, select: str, tenant: str,
                     order_nos: Sequence[str]) -> set[str]:
    """The order numbers among `order_nos` that `select … WHERE tenant = ? AND` finds."""
    found: set[str] = set()
    for batch in batches(order_nos):
        where, args = conn.in_list("order_no", batch)
        found.update(r[0] for r in await conn.fetch(f"{select} {where}", tenant, *args))
    return found


async def known_orders(conn: BulkConnection, *, tenant: str,
                       order_nos: Sequence[str]) -> set[str]:
    return await _order_nos(conn, "SELECT order_no FROM commerce_orders WHERE tenant = ? AND",
                            tenant, order_nos)


def _customers(conn: BulkConnection, customers: Sequence[str]) -> tuple[str, list[Any]]:
    """A predicate on external_userid covering the (sorted) customers: an index range on
    SQLite, whose text order is Python's; the list itself on PostgreSQL, whose collation
    may order text differently."""
    if conn.postgres:
        return "external_userid = ANY(?::varchar[])", [list(customers)]
    return "external_userid >= ? AND external_userid <= ?", [customers[0], customers[-1]]


async def customer_touches(conn: BulkConnection, *, tenant: str, customers: Sequence[str],
                           start: Any, end: Any) -> list[Any]:
    """Touches with start <= at <= end (encoded) of the customers (and on SQLite of those
    between them): tuples of the first seven TOUCH_FIELDS (unionid/openid: see
    identified_touches)."""
    who, args = _customers(conn, customers)
    rows = await conn.fetch(
        "SELECT at, kind = 'order', id, guide, token, kind, external_userid "
        f"FROM commerce_touches WHERE tenant = ? AND {who} AND at >= ? AND at <= ?",
        tenant, *args, start, end)
    return rows if not conn.postgres else [tuple(r) for r in rows]


async def identified_touches(conn: BulkConnection, *, tenant: str, unionids: Sequence[str],
                             openids: Sequence[str], start: Any, end: Any
                             ) -> list[tuple[Any, ...]]:
    """Touches with start <= at <= end of the unionids/openids: tuples of all TOUCH_FIELDS."""
    found: dict[int, tuple[Any, ...]] = {}
    for column, values in (("unionid", unionids), ("openid", openids)):
        for batch in batches(values):
            where, args = conn.in_list(column, batch)
            for r in await conn.fetch(
                    "SELECT at, kind = 'order', id, guide, token, kind, external_userid, "
                    f"unionid, openid FROM commerce_touches WHERE tenant = ? AND {where} "
                    "AND at >= ? AND at <= ?", tenant, *args, start, end):
                found[r[2]] = tuple(r)
    return list(found.values())


async def bindings_of(conn: BulkConnection, *, tenant: str,
                      customers: Sequence[str]) -> list[tuple[Any, ...]]:
    """(external_userid, guide, started_at, ended_at, end_reason, id) of the customers (and on
    SQLite of those between them), times decoded."""
    who, args = _customers(conn, customers)
    rows = await conn.fetch(
        "SELECT external_userid, guide, started_at, ended_at, end_reason, id FROM bindings "
        f"WHERE tenant = ? AND {who}", tenant, *args)
    return [(r[0], r[1], _decode(r[2]), _decode(r[3]) if r[3] is not None else None, r[4],
             r[5]) for r in rows]


async def reserve_touch_ids(conn: BulkConnection, *, count: int) -> list[int]:
    """Ids for touches about to be inserted, from the sequence (PostgreSQL only: on SQLite the
    bulk transaction counts on from highest_touch_id, which no other writer can move)."""
    if count <= 0:
        return []
    rows = await conn.fetch("SELECT nextval(pg_get_serial_sequence('commerce_touches', "
                            "'id')) FROM generate_series(1, ?::int)", count)
    return [int(r[0]) for r in rows]


async def highest_touch_id(conn: BulkConnection) -> int:
    rows = await conn.fetch("SELECT coalesce(max(id), 0) FROM commerce_touches")
    return int(rows[0][0])


async def ensure_customers(conn: BulkConnection, *, tenant: str,
                           external_userids: Sequence[str], at: datetime) -> None:
    """contacts.ensure_customer for many: create on first sight, keep existing rows."""
    if external_userids:
        created = conn.encode(at)
        await conn.run_many(
            "INSERT INTO customers (tenant, external_userid, name, avatar, corp_name, "
            "created_at) VALUES (?, ?, '', '', '', ?) ON CONFLICT DO NOTHING",
            [(tenant, e, created) for e in external_userids])


async def insert_orders(conn: BulkConnection, *, rows: Sequence[tuple[Any, ...]]) -> None:
    """New orders (the caller has excluded known order numbers), ORDER_COLUMNS."""
    if rows:
        await conn.copy("commerce_orders", rows)


async def insert_touches(conn: BulkConnection, *, rows: Sequence[tuple[Any, ...]]) -> None:
    if rows:
        await conn.copy("commerce_touches", rows)


async def insert_entries(conn: BulkConnection, *, rows: Sequence[tuple[Any, ...]]) -> None:
    """New ledger entries (keys of new orders only), ENTRY_COLUMNS."""
    if rows:
        await conn.copy("commerce_ledger", rows)


class Link(NamedTuple):
    """What the bulk path needs of a tracked link."""

    token: str
    guide: str
    sku: str


async def links_by_token(conn: BulkConnection, *, tenant: str,
                         tokens: Sequence[str]) -> dict[str, Link]:
    found: dict[str, Link] = {}
    for batch in batches(tokens):
        where, args = conn.in_list("token", batch)
        for r in await conn.fetch(f"SELECT token, guide, sku FROM commerce_links "
                                  f"WHERE tenant = ? AND {where}", tenant, *args):
            found[r[0]] = Link(r[0], r[1], r[2])
    return found


async def held_refund_orders(conn: BulkConnection, *, tenant: str,
                             order_nos: Sequence[str]) -> set[str]:
    """The order numbers among these with a refund held until the order arrives."""
    if not await conn.fetch("SELECT 1 FROM commerce_refunds WHERE tenant = ? AND "
                            "status = 'held' LIMIT 1", tenant):
        return set()  # the usual case: no refund waits for any order
    return await _order_nos(conn, "SELECT order_no FROM commerce_refunds WHERE tenant = ? AND "
                            "status = 'held' AND", tenant, order_nos)




READER_CACHE_KIB = 65_536


async def open_reader(address: tuple[str, str]) -> BulkConnection:
    """A read-only connection of its own for a bulk worker process: ("sqlite", path) or
    ("postgresql", dsn), as commerce_bulk.reader_address gives them."""
    kind, target = address
    if kind == "postgresql":
        import asyncpg  # here, so that a SQLite worker does not pay for the import

        return BulkConnection(await asyncpg.connect(target), postgres=True)
    import aiosqlite

    driver = await aiosqlite.connect(target, isolation_level=None)
    for pragma in ("busy_timeout=10000", "query_only=1", f"cache_size=-{READER_CACHE_KIB}"):
        await driver.execute(f"PRAGMA {pragma}")
    return BulkConnection(driver, postgres=False)


async def close_reader(conn: BulkConnection) -> None:
    await conn.driver.close()
