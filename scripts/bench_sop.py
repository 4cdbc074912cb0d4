"""SOP benchmark: N customers across G guides in a 5-step SOP, planned and dispatched to the
sandbox in batched tasks, against a plain bulk insert of as many rows into the same database.

guidebot's SOP service runs in this process on a fresh SQLite database (or --database-url);
the WeCom sandbox runs as its own process over HTTP (so its call log is not counted in RSS).
The clock is moved to each step's due time; every pass plans due steps (just in time),
batches them into one task per guide and step, and delivers those through the outbox to the
sandbox. Printed: wall time,
rows/s, peak RSS and the ratio to the plain insert baseline measured in the same run.

    python scripts/bench_sop.py [--customers 1000000] [--guides 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchkit import bench_config, free_port  # noqa: E402
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select  # noqa: E402

from guidebot.db.engine import Database  # noqa: E402
from guidebot.db.migrate import upgrade_async  # noqa: E402
from guidebot.db.models_sop import SopStep, SopTask  # noqa: E402
from guidebot.db.repo import sop_plan  # noqa: E402
from guidebot.services import build_services  # noqa: E402
from guidebot.settings import Settings, load_settings  # noqa: E402

T0 = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
CHUNK = 20_000


async def wait_for(port: int) -> None:
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return
    raise SystemExit("the sandbox did not start")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def setup(folder: Path, db_url: str) -> Path:
    library = folder / "content_library"
    shutil.copytree(ROOT / "content_library", library)
    shutil.copy(ROOT / "tests/data/sop/bench5.toml", library / "sops" / "bench5.toml")
    config = folder / "config.toml"
    config.write_text(bench_config(db_url, quotas='mass_msg_per_customer = "1/day"',
                                   library=library),
                      encoding="utf-8")
    return config


async def enroll(db: Database, customers: int, guides: int) -> None:
    for start in range(0, customers, CHUNK):
        rows = [{"tenant": "bench", "sop_id": "bench5", "external_userid": f"wm{i:09d}",
                 "guide": f"guide{i % guides:04d}", "store_id": None, "trigger_at": T0,
                 "status": "active", "reason": "", "version": 1, "next_step": 0,
                 "next_at": T0 + timedelta(minutes=1), "last_at": None, "created_at": T0,
                 "updated_at": T0} for i in range(start, min(customers, start + CHUNK))]
        async with db.write() as s:
            await sop_plan.insert_enrollments(s, rows)


async def baseline(db: Database, rows: int) -> float:
    """A plain bulk insert of `rows` rows shaped like step rows, into the same database."""
    table = Table("bench_plain", MetaData(), Column("id", Integer, primary_key=True),
                  *(Column(f"c{i}", String(64)) for i in range(8)),
                  *(Column(f"n{i}", Integer) for i in range(3)))
    async with db.engine.begin() as conn:
        await conn.run_sync(table.create)
    started = time.perf_counter()
    for start in range(0, rows, CHUNK):
        batch = [{**{f"c{i}": f"value{n}-{i}" for i in range(8)},
                  **{f"n{i}": n for i in range(3)}}
                 for n in range(start, min(rows, start + CHUNK))]
        async with db.write() as s:
            await s.execute(insert(table), batch)
    return time.perf_counter() - started


async def main(customers: int, guides: int, db_url: str | None) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-sop-"))
    url = db_url or f"sqlite+aiosqlite:///{folder / 'bench.db'}"
    config = setup(folder, url)
    settings = load_settings(config)
    port = free_port()
    sandbox = subprocess.Popen(  # its own process: its call log is not guidebot's memory
        [sys.executable, "-m", "guidebot", "--log-level", "WARNING", "sandbox", "--config",
         str(config), "--port", str(port)], cwd=ROOT)
    try:
        await wait_for(port)
        await run(settings, url, port, customers, guides)
    finally:
        sandbox.terminate()
        try:
            sandbox.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sandbox.kill()
            sandbox.wait()
        shutil.rmtree(folder, ignore_errors=True)


async def run(settings: Settings, url: str, port: int, customers: int, guides: int) -> None:
    settings = replace(settings, tenants={t: replace(v, api_base=f"http://127.0.0.1:{port}/cgi-bin/")
                                          for t, v in settings.tenants.items()})
    await upgrade_async(url)
    services = build_services(settings, Database(url))
    sop, db = services.sop, services.db
    await sop.ready("bench")
    print(f"{customers:,} customers, {guides:,} guides, 5 steps, database {url.split(':')[0]}")

    started = time.perf_counter()
    await enroll(db, customers, guides)
    enrolled = time.perf_counter() - started
    print(f"  enrolled in {enrolled:.1f} s")
    for day, hour in ((0, 12), (1, 10), (2, 10), (3, 11), (4, 10)):
        local = (T0 + timedelta(days=day)).replace(hour=hour - 8, minute=5)
        sop.clock = lambda at=local: at
        mark = time.perf_counter()
        await sop.plan("bench", limit=5000)
        while await sop.dispatcher.batch("bench"):
            while await sop.dispatcher.deliver("bench", limit=500):
                pass
        while await sop.dispatcher.deliver("bench", limit=500):
            pass
        print(f"  step due {local.isoformat()}: {time.perf_counter() - mark:.1f} s, "
              f"peak RSS {peak_rss_mb():.0f} MB")
    wall = time.perf_counter() - started
    async with db.read() as s:
        steps = (await s.execute(select(func.count()).select_from(SopStep))).scalar_one()
        tasks = (await s.execute(select(func.count()).select_from(SopTask))).scalar_one()
    rows = customers + int(steps) + int(tasks)
    plain = await baseline(db, rows)
    print(f"step rows {steps:,}, tasks (群发 + reminders + notifications) {tasks:,}")
    print(f"wall time {wall:.1f} s, {rows / wall:,.0f} rows/s, peak RSS {peak_rss_mb():.0f} MB")
    print(f"plain bulk insert of {rows:,} rows: {plain:.1f} s ({rows / plain:,.0f} rows/s); "
          f"ratio {wall / plain:.2f}")
    await services.close()
    await db.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--guides", type=int, default=1_000)
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    args = parser.parse_args()
    asyncio.run(main(args.customers, args.guides, args.database_url))
