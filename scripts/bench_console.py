"""Console benchmark: server time of the overview (data centre) and the guides leaderboard
for one tenant with 1,000,000 customers and 1,000,000 orders over a year.

The pages read only the daily statistics, so the database is filled as the upkeep leaves it
for such a tenant (generation is not timed): 1,000,000 rows of per-customer facts (orders
spread over them), the layer counts they make (guidebot/stats/layers.py: by add day and
last-purchase day) and one daily row per guide and day (500 guides in 25 stores, 365 days).
Then the real app answers GET /console/bench/?from=&to= (30-day ranges ending on different
days) and GET /console/bench/guides over HTTP with the bearer header; it prints
p50/p95/max per page. The upkeep itself is not timed here.

    python scripts/bench_console.py [--customers 1000000] [--db-url URL] [--runs 40]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402
from sqlalchemy import insert  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

from guidebot.app import create_app  # noqa: E402
from guidebot.db.migrate import upgrade  # noqa: E402
from guidebot.db.models_stats import (  # noqa: E402
    StatsCustomer,
    StatsDaily,
    StatsLayerAdds,
    StatsLayerBuyers,
)
from guidebot.db.repo.stats import COUNTS  # noqa: E402
from guidebot.settings import load_settings  # noqa: E402
from guidebot.stats import layers  # noqa: E402
from scripts.benchkit import bench_config, free_port  # noqa: E402

END = date(2026, 11, 30)
DAYS = 365
GUIDES = 500
STORES = 25
CHUNK = 20_000


def _customers(n: int, rng: random.Random) -> list[dict[str, object]]:
    start = datetime.combine(END - timedelta(days=DAYS), datetime.min.time(), tzinfo=UTC)
    rows = []
    for i in range(n):
        added = start + timedelta(seconds=rng.randrange(DAYS * 86_400))
        orders = rng.choice((0, 0, 1, 1, 1, 2, 3))  # about 1,000,000 orders in all
        paid = added + timedelta(days=rng.randrange(1, 60)) if orders else None
        rows.append({"tenant": "bench", "external_userid": f"wm{i:08d}",
                     "first_added_at": added, "via_code": i % 3 != 0,
                     "following": 0 if i % 11 == 0 else 1, "orders": orders,
                     "gmv_fen": orders * rng.randrange(1_000, 80_000),
                     "first_order_no": f"O{i}" if orders else None,
                     "first_paid_at": paid, "last_paid_at": paid})
    return rows


def _daily(rng: random.Random) -> list[dict[str, object]]:
    rows = []
    for d in range(DAYS):
        day = (END - timedelta(days=d)).isoformat()
        for g in range(GUIDES):
            counts = {name: rng.randrange(0, 6) for name in COUNTS}
            counts["gmv_fen"] = counts["orders"] * rng.randrange(1_000, 80_000)
            counts["gmv_all_fen"] = counts["gmv_fen"] + rng.randrange(0, 50_000)
            rows.append({"tenant": "bench", "day": day, "store_id": f"S{g % STORES:02d}",
                         "guide": f"guide{g:04d}", **counts})
    return rows


def _layers(customers: list[dict[str, object]], zone: ZoneInfo) -> tuple[list[dict[str, object]],
                                                                         list[dict[str, object]]]:
    moves = layers.Moves()
    moves.count(layers.cells(SimpleNamespace(**row), zone) for row in customers)
    adds = [{"tenant": "bench", "add_day": a, "following": f, "tier": t, "customers": n}
            for (a, f, t), n in moves.adds.items()]
    buyers = [{"tenant": "bench", "paid_day": p, "add_day": a, "customers": n}
              for (p, a), n in moves.buyers.items()]
    return adds, buyers


async def fill(db_url: str, customers: int, zone: ZoneInfo) -> None:
    rng = random.Random(13)
    engine = create_async_engine(db_url)
    try:
        facts = _customers(customers, rng)
        adds, buyers = _layers(facts, zone)
        tables = ((StatsDaily, _daily(rng)), (StatsCustomer, facts), (StatsLayerAdds, adds),
                  (StatsLayerBuyers, buyers))
        for table, rows in tables:
            for i in range(0, len(rows), CHUNK):
                async with engine.begin() as conn:
                    await conn.execute(insert(table), rows[i:i + CHUNK])
            print(f"  {table.__tablename__}: {len(rows):,} rows", flush=True)
    finally:
        await engine.dispose()


async def measure(db_url: str, config: Path, runs: int) -> dict[str, list[float]]:
    settings = load_settings(config)
    app = create_app(settings, start_jobs=False)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    base = f"http://127.0.0.1:{port}/console/bench"
    headers = {"Authorization": "Bearer bench-admin-token"}
    times: dict[str, list[float]] = {"overview": [], "guides": []}
    try:
        async with aiohttp.ClientSession(headers=headers) as http:
            for i in range(runs + 3):  # the first three warm the caches and are not kept
                to = END - timedelta(days=i * 7 % 300)
                query = {"from": (to - timedelta(days=29)).isoformat(), "to": to.isoformat()}
                for page, path in (("overview", "/"), ("guides", "/guides")):
                    began = time.perf_counter()
                    async with http.get(base + path, params=query) as resp:
                        assert resp.status == 200, await resp.text()
                        await resp.read()
                    if i >= 3:
                        times[page].append((time.perf_counter() - began) * 1000)
    finally:
        await runner.cleanup()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--db-url", help="default: a fresh SQLite file in a temp folder")
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db_url = args.db_url or f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        config = Path(folder) / "config.toml"
        config.write_text(bench_config(db_url), encoding="utf-8")
        upgrade(db_url)
        print(f"filling {db_url.split('://')[0]} ({args.customers:,} customers)", flush=True)
        zone = load_settings(config).tenant("bench").tz
        asyncio.run(fill(db_url, args.customers, zone))
        times = asyncio.run(measure(db_url, config, args.runs))
    for page, ms in times.items():
        ordered = sorted(ms)
        p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
        print(f"{page:9s} p50 {statistics.median(ms):7.1f} ms  p95 {p95:7.1f} ms  "
              f"max {ordered[-1]:7.1f} ms  ({len(ms)} requests)")


if __name__ == "__main__":
    main()
