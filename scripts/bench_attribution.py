"""Attribution benchmark: attribute and ledger 1,000,000 orders against 2,000,000 touches.

Builds a fresh SQLite database with 200,000 customers, 2,000 guides, 2,000,000 visit
touches and exclusive-guide bindings for 60% of the customers (generation is not timed),
then feeds 1,000,000 paid orders (10% carrying a tracking token) through guidebot's bulk
attribution path (guidebot.commerce.bulk.record_many: the DESIGN §5.4 rules, rule versions,
evidence JSON, order rows, tracking touches and earn ledger entries). It prints throughput,
peak RSS, and the ratio to ONE hand-written SQL statement computing the same share-link
attribution for the same orders in the same run, and checks that both agree. It also times the
per-order webhook path (OrderService.paid) on a small sample for comparison.

With --stats it then runs the daily-statistics upkeep (the console's job, guidebot/stats) over
the orders and ledger entries the bulk path wrote, and prints its time as a share of the bulk
path's: what keeping the statistics adds to this workload. Two lower bounds follow: writing the
statistics' end state alone, and counting the orders inside the bulk path with nothing but
the sums and their writes (with the orders' stores as generated, with each guide's orders
in one store, and with store × day and guide × day totals kept apart), and the same counted
in SQL from the rows the bulk path wrote.

    python scripts/bench_attribution.py [--scale 1.0] [--sample 2000] [--stats]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import sqlite3
import sys
import tempfile
import time
import zlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from guidebot.commerce import bulk  # noqa: E402
from guidebot.commerce.attribution import Item  # noqa: E402
from guidebot.commerce.schema import CustomerRef, PaidOrder  # noqa: E402
from guidebot.db.engine import Database  # noqa: E402
from guidebot.db.migrate import upgrade  # noqa: E402
from guidebot.services import build_services  # noqa: E402
from guidebot.settings import CommissionSettings, load_settings  # noqa: E402
from guidebot.stats.definitions import GUIDE_RULES  # noqa: E402
from tests.support.stack import write_config  # noqa: E402

T0 = datetime(2026, 8, 1, tzinfo=UTC)
SPAN_S = 90 * 86_400
SKUS = [(f"SKU{i:03d}", ("beauty", "shoes", "bags", "")[i % 4]) for i in range(200)]
SHARE_LINK_SQL = """
SELECT o.order_no,
  (SELECT t.guide FROM commerce_touches t
    WHERE t.tenant = o.tenant AND t.external_userid = o.external_userid
      AND t.at <= o.paid_at AND t.at >= datetime(o.paid_at, '-7 days')
    ORDER BY t.at DESC, t.id DESC LIMIT 1) AS guide
FROM commerce_orders o WHERE o.tenant = 'acme'
"""


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def generate(path: Path, customers: int, guides: int, touches: int, rng: random.Random) -> None:
    """Touches, bindings and links straight into the database (not timed)."""
    conn = sqlite3.connect(path)
    tokens = [(f"tok{g:05d}", f"g{g:04d}") for g in range(guides)]
    conn.executemany(
        "INSERT INTO commerce_links (token, tenant, guide, sku, page, campaign, customer, "
        "created_at) VALUES (?, 'acme', ?, '', 'pages/index/index.html', '', NULL, ?)",
        [(t, g, _stamp(T0)) for t, g in tokens])

    def touch_rows():  # type: ignore[no-untyped-def]
        for _ in range(touches):
            at = T0 + timedelta(seconds=rng.randrange(SPAN_S))
            sku, category = rng.choice(SKUS)
            yield (f"wm{rng.randrange(customers):06d}", f"g{rng.randrange(guides):04d}",
                   "tok", sku, category, rng.randrange(300), _stamp(at))

    conn.executemany(
        "INSERT INTO commerce_touches (tenant, external_userid, guide, token, kind, sku, "
        "category, dur_s, at) VALUES ('acme', ?, ?, ?, 'visit', ?, ?, ?, ?)", touch_rows())

    def binding_rows():  # type: ignore[no-untyped-def]
        for c in range(customers):
            if rng.random() < 0.6:
                start = T0 + timedelta(seconds=rng.randrange(-120 * 86_400, 60 * 86_400))
                ended = (start + timedelta(days=rng.randrange(1, 90))
                         if rng.random() < 0.2 else None)
                yield (f"wm{c:06d}", f"g{rng.randrange(guides):04d}", _stamp(start),
                       _stamp(ended) if ended else None, "customer_deleted" if ended else "")

    conn.executemany(
        "INSERT INTO bindings (tenant, external_userid, guide, started_at, ended_at, end_reason) "
        "VALUES ('acme', ?, ?, ?, ?, ?)", binding_rows())
    conn.commit()
    conn.close()


def orders(count: int, customers: int, guides: int, rng: random.Random, start: int = 0,
           first: int = 0, last: int | None = None):  # type: ignore[no-untyped-def]
    """Orders of customers first..last-1 (a store backend's batch of one customer range, so
    that every order of a customer is recorded in paid_at order and the SQL check is exact)."""
    last = customers if last is None else last
    for n in range(start, start + count):
        items = tuple(Item(*rng.choice(SKUS), amount_fen=rng.randrange(100, 100_000))
                      for _ in range(rng.choice((1, 1, 2))))
        tracking = f"tok{rng.randrange(guides):05d}" if rng.random() < 0.1 else ""
        yield PaidOrder(f"O{n:08d}", T0 + timedelta(seconds=rng.randrange(SPAN_S)),
                        CustomerRef(f"wm{rng.randrange(first, last):06d}"), tracking,
                        f"S{rng.randrange(100):03d}", items)


async def run(args: argparse.Namespace) -> None:
    scale = args.scale
    n_customers, n_guides = int(200_000 * scale), max(int(2_000 * scale), 10)
    n_touches, n_orders = int(2_000_000 * scale), int(1_000_000 * scale)
    folder = Path(tempfile.mkdtemp(prefix="bench-attr-"))
    db_file = folder / "bench.db"
    url = f"sqlite+aiosqlite:///{db_file}"
    await asyncio.to_thread(upgrade, url)
    rng = random.Random(42)
    began = time.perf_counter()
    generate(db_file, n_customers, n_guides, n_touches, rng)
    print(f"generated {n_customers:,} customers, {n_guides:,} guides, {n_touches:,} touches "
          f"in {time.perf_counter() - began:.1f}s (not timed)")
    base = load_settings(write_config(folder, url))
    tenant = replace(base.tenant("acme"), commission=CommissionSettings(
        rates={"category:beauty": "0.05", "sku:SKU007": "0.08"}))
    settings = replace(base, tenants={"acme": tenant})
    db = Database(url)
    services = build_services(settings, db)
    batch = 100_000
    ours = 0.0
    recorded = 0
    for start in range(0, n_orders, batch):
        size = min(batch, n_orders - start)
        first = n_customers * start // n_orders
        chunk = list(orders(size, n_customers, n_guides, rng, start, first,
                            n_customers * (start + size) // n_orders))
        began = time.perf_counter()  # input generation is not timed; attribution + ledger is
        result = await bulk.record_many(db, tenant, chunk, services.commerce.clock)
        ours += time.perf_counter() - began
        recorded += result.recorded
    async with db.read() as s:
        began = time.perf_counter()
        rows = (await s.execute(text(SHARE_LINK_SQL))).all()
        baseline = time.perf_counter() - began
        ours_rows = (await s.execute(text(
            "SELECT order_no, rule, guide FROM commerce_orders WHERE tenant='acme'"))).all()
        entries = (await s.execute(text(
            "SELECT count(*), sum(amount_fen) FROM commerce_ledger WHERE tenant='acme'"))).one()
    upkeep: tuple[int, float, float] | None = None
    if args.stats:
        began, cpu = time.perf_counter(), time.process_time()
        counted = await services.stats.upkeep()
        upkeep = (counted, time.perf_counter() - began, time.process_time() - cpu)
    floor = write_floor(db_file) if args.stats else None
    in_path = ([in_path_floor(db_file, tenant.tz, home_stores=home, apart=apart)
                for home, apart in ((False, False), (True, False), (False, True))]
               if args.stats else None)
    in_sql = in_path_sql_floor(db_file, tenant.tz) if args.stats else None
    sql_guides = {no: g for no, g in rows}
    mismatch = sum(1 for no, rule, guide in ours_rows
                   if (rule == "share_link" and sql_guides[no] != guide)
                   or (rule != "share_link" and sql_guides[no] is not None))
    sample = await per_order_sample(services, tenant, args.sample, n_customers, n_guides, rng)
    await services.close()
    await db.dispose()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worker_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    rules = {}
    for _, rule, _ in ours_rows:
        rules[rule] = rules.get(rule, 0) + 1
    print(f"bulk path: {recorded:,} orders attributed + ledgered in {ours:.1f}s "
          f"= {recorded / ours:,.0f} orders/s; ledger entries {entries[0]:,} "
          f"({entries[1]:,} fen)")
    print(f"rules: {rules}")
    print(f"one SQL statement (share-link only, no writes): {baseline:.1f}s; "
          f"ratio ours/SQL = {ours / baseline:.2f}")
    print(f"agreement with SQL on share_link: {len(ours_rows) - mismatch:,}/{len(ours_rows):,} "
          f"orders ({mismatch} differ)")
    if upkeep is not None:
        print(f"daily-statistics upkeep of these rows: {upkeep[0]:,} rows in {upkeep[1]:.1f}s "
              f"= {100 * upkeep[1] / ours:.1f}% of the bulk path's time; this process's CPU "
              f"{upkeep[2]:.1f}s = {1e6 * upkeep[2] / max(upkeep[0], 1):.1f} µs per row")
    if floor is not None:
        print(f"the job's end state alone ({floor[0]:,} daily cells and {floor[1]:,} customers' "
              f"facts, upserted by sqlite3 into empty copies of their tables): {floor[2]:.2f}s "
              f"= {100 * floor[2] / ours:.1f}% of the bulk path's time (what any counting at "
              f"this grain writes at least)")
    if in_path is not None:
        for (cells, took), how in zip(in_path, (
                "tenant × store × guide × day, the stores as generated",
                "tenant × store × guide × day, each guide's orders in one store",
                "store × day and guide × day apart, the stores as generated"), strict=True):
            print(f"counting inside the bulk path, at least (summed in Python per cell and "
                  f"customer, upserted per chunk; {how}: {cells:,} cells): {took:.2f}s = "
                  f"{100 * took / ours:.1f}% of the bulk path's time")
    if in_sql is not None:
        print(f"counting inside the bulk path in SQL, at least (each chunk's rows upserted by "
              f"one statement per table, credited and all orders and GMV only; "
              f"{in_sql[0]:,} cells): {in_sql[1]:.2f}s = {100 * in_sql[1] / ours:.1f}% of the "
              f"bulk path's time")
    print(f"per-order webhook path (OrderService.paid, one transaction each): "
          f"{sample:,.0f} orders/s on a {args.sample:,}-order sample")
    print(f"peak RSS {rss_mb:,.0f} MB (the largest decision worker: {worker_mb:,.0f} MB); "
          f"database {db_file.stat().st_size / 2**20:,.0f} MB at {db_file}")


STATS_TABLES = ("stats_daily", "stats_customers")


def _empty_copy(conn: sqlite3.Connection, table: str) -> str:
    """An empty copy of a table with its indexes (floor_<table>, made anew); its name."""
    copy = f"floor_{table}"
    conn.execute(f"DROP TABLE IF EXISTS {copy}")
    for (sql,) in conn.execute(  # the table, then its indexes, renamed
            "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL",
            (table,)).fetchall():
        conn.execute(sql.replace(table, copy, 1).replace(f"ON {table}", f"ON {copy}")
                     .replace("INDEX ix_", "INDEX floor_ix_"))
    return copy


def write_floor(db_file: Path) -> tuple[int, int, float]:
    """Time writing the statistics' end state (stats_daily and stats_customers, every row
    once) into empty copies of their tables, with sqlite3 and nothing else: a lower bound of
    what counting these rows costs at this grain, whatever the design."""
    conn = sqlite3.connect(db_file)
    sizes: list[int] = []
    elapsed = 0.0
    for table in STATS_TABLES:
        copy = _empty_copy(conn, table)
        keys = [r[1] for r in conn.execute(f"PRAGMA table_info({table})") if r[5]]
        columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        values = [c for c in columns if c not in keys]
        rows = conn.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()
        upsert = (f"INSERT INTO {copy} ({', '.join(columns)}) VALUES "
                  f"({', '.join('?' * len(columns))}) ON CONFLICT ({', '.join(keys)}) DO "
                  f"UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in values))
        conn.commit()
        began = time.perf_counter()
        conn.executemany(upsert, rows)
        conn.commit()
        elapsed += time.perf_counter() - began
        sizes.append(len(rows))
        conn.execute(f"DROP TABLE {copy}")
    conn.close()
    return sizes[0], sizes[1], elapsed


def in_path_floor(db_file: Path, zone: ZoneInfo, *, home_stores: bool,
                  apart: bool = False) -> tuple[int, float]:
    """Time the least that counting orders inside the bulk path would add: each chunk's orders
    (as the bulk path holds them in memory) summed in Python per tenant × store × guide × day
    cell and per customer (orders, GMV, first and last purchase), then upserted into empty
    copies of stats_daily and stats_customers, one transaction per chunk. No layer moves, no
    first-purchase title moves, no marks, no locks: a lower bound. `home_stores` puts an
    order credited to a guide in that guide's one store (guides here sell in every store);
    `apart` keeps store × day and guide × day totals instead of the cross cells (rows with
    the guide or the store left empty)."""
    conn = sqlite3.connect(db_file)
    rows = conn.execute(
        "SELECT order_no, coalesce(external_userid, ''), paid_at, amount_fen, "
        "coalesce(nullif(credited_store, ''), nullif(store_id, ''), ''), coalesce(guide, ''), "
        "rule FROM commerce_orders WHERE tenant = 'acme' ORDER BY rowid").fetchall()
    orders = [(no, customer, datetime.fromisoformat(paid).replace(tzinfo=UTC), fen,
               f"S{zlib.crc32(guide.encode()) % 100:03d}" if home_stores and guide else store,
               guide, rule) for no, customer, paid, fen, store, guide, rule in rows]
    copies = [_empty_copy(conn, table) for table in STATS_TABLES]
    conn.commit()
    cell_sql = (
        "INSERT INTO floor_stats_daily VALUES ('acme', ?, ?, ?, 0, 0, 0, 0, 0, ?, ?, ?, ?, 0, "
        "0, ?, ?, 0) ON CONFLICT (tenant, day, store_id, guide) DO UPDATE SET "
        + ", ".join(f"{c} = {c} + excluded.{c}" for c in (
            "first_purchases", "repurchases", "orders", "gmv_fen", "orders_all", "gmv_all_fen")))
    customer_sql = (
        "INSERT INTO floor_stats_customers VALUES ('acme', ?, NULL, 0, 0, ?, ?, ?, ?, ?) "
        "ON CONFLICT (tenant, external_userid) DO UPDATE SET "
        "orders = orders + excluded.orders, gmv_fen = gmv_fen + excluded.gmv_fen")
    days: dict[int, str] = {}
    elapsed = 0.0
    chunk = bulk.Sizes().chunk
    for start in range(0, len(orders), chunk):
        began = time.perf_counter()
        cells: dict[tuple[str, str, str], list[int]] = {}
        customers: dict[str, list] = {}  # type: ignore[type-arg]
        for no, customer, paid, fen, store, guide, rule in orders[start:start + chunk]:
            hour = int(paid.timestamp()) // 3600
            day = days.get(hour)
            if day is None:
                day = days[hour] = paid.astimezone(zone).date().isoformat()
            keys = ((day, store, ""), (day, "", guide)) if apart else ((day, store, guide),)
            credited = rule in GUIDE_RULES
            for key in keys:
                cell = cells.get(key)
                if cell is None:
                    cell = cells[key] = [0, 0, 0, 0, 0, 0]
                if credited:
                    cell[0] += 1
                    cell[1] += fen
                cell[2] += 1
                cell[3] += fen
                if customer:
                    cell[4] += 1
            if customer:
                facts = customers.get(customer)
                if facts is None:
                    customers[customer] = [1, fen, paid, no, keys, paid]
                else:
                    facts[0] += 1
                    facts[1] += fen
                    if (paid, no) < (facts[2], facts[3]):
                        facts[2], facts[3], facts[4] = paid, no, keys
                    facts[5] = max(facts[5], paid)
        for facts in customers.values():
            for key in facts[4]:
                cells[key][5] += 1
        conn.executemany(cell_sql, [(*key, c[5], c[4] - c[5], c[0], c[1], c[2], c[3])
                                    for key, c in cells.items()])
        conn.executemany(customer_sql, [(customer, f[0], f[1], f[3], _stamp(f[2]), _stamp(f[5]))
                                        for customer, f in customers.items()])
        conn.commit()
        elapsed += time.perf_counter() - began
    written = conn.execute("SELECT count(*) FROM floor_stats_daily").fetchone()[0]
    for copy in copies:
        conn.execute(f"DROP TABLE {copy}")
    conn.close()
    return written, elapsed


def in_path_sql_floor(db_file: Path, zone: ZoneInfo) -> tuple[int, float]:
    """The same lower bound counted in SQL instead of Python: each chunk's orders (read back
    by their rowids: on SQLite one bulk-path chunk is one transaction, so its rows are one
    contiguous rowid range) added to empty copies of stats_daily (one upsert per order, which
    merges the cell; a GROUP BY first costs more, by SQLite's sorter) and stats_customers
    (grouped per customer), one statement each per chunk. Credited and all orders and GMV
    only: no first purchases, no layers, no marks, no locks."""
    conn = sqlite3.connect(db_file)
    conn.execute("PRAGMA synchronous=NORMAL")  # as the app runs SQLite
    copies = [_empty_copy(conn, table) for table in STATS_TABLES]
    conn.commit()
    offset = int(datetime(2026, 8, 1, tzinfo=zone).utcoffset().total_seconds())  # type: ignore[union-attr]
    rules = ", ".join(f"'{r}'" for r in sorted(GUIDE_RULES))
    credited = f"CASE WHEN o.rule IN ({rules}) THEN 1 ELSE 0 END"
    cells = (
        "INSERT INTO floor_stats_daily (tenant, day, store_id, guide, adds_code, adds_other, "
        "deletions, new_customers_code, new_customers_other, first_purchases, repurchases, "
        "orders, gmv_fen, orders_new, gmv_new_fen, orders_all, gmv_all_fen, commission_fen) "
        f"SELECT o.tenant, date(o.paid_at, '{offset:+d} seconds'), "
        "coalesce(nullif(o.credited_store, ''), nullif(o.store_id, ''), ''), "
        f"coalesce(o.guide, ''), 0, 0, 0, 0, 0, 0, 0, {credited}, {credited} * o.amount_fen, "
        "0, 0, 1, o.amount_fen, 0 FROM commerce_orders o WHERE o.rowid BETWEEN :a AND :b "
        "ON CONFLICT (tenant, day, store_id, guide) DO UPDATE SET "
        + ", ".join(f"{c} = {c} + excluded.{c}"
                    for c in ("orders", "gmv_fen", "orders_all", "gmv_all_fen")))
    customers = (
        "INSERT INTO floor_stats_customers (tenant, external_userid, first_added_at, via_code, "
        "following, orders, gmv_fen, first_order_no, first_paid_at, last_paid_at) "
        "SELECT o.tenant, o.external_userid, NULL, 0, 0, count(*), sum(o.amount_fen), "
        "min(o.order_no), min(o.paid_at), max(o.paid_at) FROM commerce_orders o "
        "WHERE o.rowid BETWEEN :a AND :b AND coalesce(o.external_userid, '') <> '' "
        "GROUP BY o.tenant, o.external_userid ON CONFLICT (tenant, external_userid) DO UPDATE "
        "SET orders = orders + excluded.orders, gmv_fen = gmv_fen + excluded.gmv_fen, "
        "last_paid_at = max(last_paid_at, excluded.last_paid_at)")
    lo, hi = conn.execute(
        "SELECT min(rowid), max(rowid) FROM commerce_orders WHERE tenant = 'acme'").fetchone()
    elapsed = 0.0
    chunk = bulk.Sizes().chunk
    for start in range(lo, hi + 1, chunk):
        span = {"a": start, "b": start + chunk - 1}
        began = time.perf_counter()
        conn.execute(cells, span)
        conn.execute(customers, span)
        conn.commit()
        elapsed += time.perf_counter() - began
    written = conn.execute("SELECT count(*) FROM floor_stats_daily").fetchone()[0]
    for copy in copies:
        conn.execute(f"DROP TABLE {copy}")
    conn.close()
    return written, elapsed


async def per_order_sample(services, tenant, count, customers, guides, rng) -> float:  # type: ignore[no-untyped-def]
    sample = list(orders(count, customers, guides, rng, start=90_000_000))
    began = time.perf_counter()
    for order in sample:
        await services.commerce.orders.paid(tenant, order, resolve_remote=False)
    return count / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = the issue's sizes")
    parser.add_argument("--sample", type=int, default=2000)
    parser.add_argument("--stats", action="store_true",
                        help="also time the daily-statistics upkeep over the rows written")
    args = parser.parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
