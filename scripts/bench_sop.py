"""SOP benchmark: N customers across G guides enrolled in a 5-step SOP, planned and
dispatched to the sandbox in batched tasks, against a plain bulk insert of as many rows into
the same database.

guidebot's SOP service runs in this process on a fresh SQLite database (or --database-url);
the WeCom sandbox runs as its own process over HTTP (its call log is not guidebot's memory).
Not timed, and done by a child process (so its memory is not in the peak RSS either):
seeding the relations, in guidebot's database (customers and follows, as the webhook would
have made them) and in the sandbox (POST /_sandbox/{t}/seed, so WeCom knows every customer
is the guide's). Timed: one audience enrollment of every relation (what the admin API's
enroll with an audience does), then for each step the clock moves to its due time and the
passes plan the due steps (just in time, each born in its guide's task), batch any steps
planned for later, and deliver the tasks through the outbox to the sandbox. Printed: wall
time, rows/s, peak RSS of the timed work, and the ratio to the plain insert baseline
measured afterwards in the same run and database.

    python scripts/bench_sop.py [--customers 1000000] [--guides 1000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from benchkit import bench_config, free_port  # noqa: E402
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select  # noqa: E402

from guidebot.cli import loop_factory  # noqa: E402
from guidebot.content.sop_spec import Audience  # noqa: E402
from guidebot.db.engine import Database  # noqa: E402
from guidebot.db.migrate import upgrade_async  # noqa: E402
from guidebot.db.models import Customer, Follow, Guide, Tenant  # noqa: E402
from guidebot.db.models_sop import SopStep, SopTask  # noqa: E402
from guidebot.db.repo import sop_plan  # noqa: E402
from guidebot.server import SWITCH_INTERVAL_S  # noqa: E402
from guidebot.services import build_services  # noqa: E402
from guidebot.settings import Settings, load_settings  # noqa: E402

T0 = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
CHUNK = 20_000
STEP_TIMES = ((0, 12), (1, 10), (2, 10), (3, 11), (4, 10))  # local day and hour of each pass


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


# -- seeding (a child process, not timed) ----------------------------------------------------


def _guide(i: int, guides: int) -> str:
    return f"guide{i % guides:04d}"


async def seed_database(url: str, customers: int, guides: int) -> None:
    """The relations guidebot would hold after the adds."""
    await upgrade_async(url)
    if url.startswith("sqlite"):  # sqlite3 directly: a few seconds instead of a minute
        _seed_sqlite(Path(url.split("///", 1)[1]), customers, guides)
        return
    db = Database(url)
    rows = {Tenant: [{"id": "bench", "corp_id": "wwbench0000000001", "created_at": T0}],
            Guide: [{"tenant": "bench", "userid": _guide(g, guides), "name": f"导购{g:04d}",
                     "store_id": None, "created_at": T0} for g in range(guides)]}
    async with db.write() as s:
        for model, items in rows.items():
            await s.execute(insert(model.__table__), items)  # type: ignore[attr-defined]
    for start in range(0, customers, CHUNK):
        span = range(start, min(customers, start + CHUNK))
        async with db.write() as s:
            await s.execute(insert(Customer.__table__), [  # type: ignore[attr-defined]
                {"tenant": "bench", "external_userid": f"wm{i:09d}", "name": "", "avatar": "",
                 "corp_name": "", "created_at": T0} for i in span])
            await s.execute(insert(Follow.__table__), [  # type: ignore[attr-defined]
                {"tenant": "bench", "guide": _guide(i, guides), "external_userid": f"wm{i:09d}",
                 "status": "active", "state": "", "added_at": T0} for i in span])
    await db.dispose()


def _seed_sqlite(path: Path, customers: int, guides: int) -> None:
    stamp = T0.strftime("%Y-%m-%d %H:%M:%S.%f")
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO tenants (id, corp_id, created_at) VALUES ('bench', ?, ?)",
                 ("wwbench0000000001", stamp))
    conn.executemany("INSERT INTO guides (tenant, userid, name, store_id, created_at) "
                     "VALUES ('bench', ?, ?, NULL, ?)",
                     ((_guide(g, guides), f"导购{g:04d}", stamp) for g in range(guides)))
    conn.executemany("INSERT INTO customers (tenant, external_userid, name, avatar, corp_name, "
                     "created_at) VALUES ('bench', ?, '', '', '', ?)",
                     ((f"wm{i:09d}", stamp) for i in range(customers)))
    conn.executemany("INSERT INTO follows (tenant, guide, external_userid, status, state, "
                     "added_at) VALUES ('bench', ?, ?, 'active', '', ?)",
                     ((_guide(i, guides), f"wm{i:09d}", stamp) for i in range(customers)))
    conn.commit()
    conn.close()


async def seed_sandbox(port: int, customers: int, guides: int) -> None:
    """WeCom's side of the same relations."""
    async with aiohttp.ClientSession() as http:
        for start in range(0, customers, 50_000):
            follows = [{"userid": _guide(i, guides), "external_userid": f"wm{i:09d}"}
                       for i in range(start, min(customers, start + 50_000))]
            async with http.post(f"http://127.0.0.1:{port}/_sandbox/bench/seed",
                                 json={"follows": follows}) as resp:
                if resp.status != 200:
                    raise SystemExit(f"seeding the sandbox: {resp.status} {await resp.text()}")


async def seed(url: str, port: int, customers: int, guides: int) -> None:
    await seed_database(url, customers, guides)
    await seed_sandbox(port, customers, guides)


# -- the measured run -----------------------------------------------------------------------


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


def _child(args: list[str]) -> None:
    """This script with --seed-only (the seeding process)."""
    subprocess.run([sys.executable, __file__, "--seed-only", *args], check=True, cwd=ROOT)


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
        began = time.perf_counter()
        await asyncio.to_thread(_child, ["--database-url", url, "--sandbox-port", str(port),
                                         "--customers", str(customers), "--guides", str(guides)])
        print(f"seeded {customers:,} relations in {time.perf_counter() - began:.1f} s "
              "(not timed, another process)")
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
    services = build_services(settings, Database(url))
    sop, db = services.sop, services.db
    await sop.ready("bench")
    print(f"{customers:,} customers, {guides:,} guides, 5 steps, database {url.split(':')[0]}")

    started = time.perf_counter()
    sop.engine.clock = lambda: T0
    enrolled = await sop.engine.enroll_audience("bench", "bench5", Audience())
    print(f"  enrolled {enrolled:,} in {time.perf_counter() - started:.1f} s")
    for day, hour in STEP_TIMES:
        local = (T0 + timedelta(days=day)).replace(hour=hour - 8, minute=5)
        sop.clock = lambda at=local: at
        mark = time.perf_counter()
        await sop.plan("bench")
        while await sop.dispatcher.batch("bench"):
            pass
        while await sop.dispatcher.deliver("bench"):
            pass
        print(f"  step due {local.isoformat()}: {time.perf_counter() - mark:.1f} s, "
              f"peak RSS {peak_rss_mb():.0f} MB")
    wall = time.perf_counter() - started
    rss = peak_rss_mb()
    async with db.read() as s:
        steps = (await s.execute(select(func.count()).select_from(SopStep))).scalar_one()
        tasks = (await s.execute(select(func.count()).select_from(SopTask))).scalar_one()
        counts = await sop_plan.count_steps(s, tenant="bench")
    rows = customers + int(steps) + int(tasks)
    plain = await baseline(db, rows)
    print(f"step rows {steps:,} {dict(sorted(counts.items()))}, "
          f"tasks (群发 + reminders + notifications) {tasks:,}")
    print(f"wall time {wall:.1f} s, {rows / wall:,.0f} rows/s, peak RSS {rss:.0f} MB")
    print(f"plain bulk insert of {rows:,} rows: {plain:.1f} s ({rows / plain:,.0f} rows/s); "
          f"ratio {wall / plain:.2f}")
    await services.close()
    await db.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--guides", type=int, default=1_000)
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument("--seed-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sandbox-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed_only:
        asyncio.run(seed(args.database_url, args.sandbox_port, args.customers, args.guides))
        sys.exit(0)
    # The runtime of `guidebot serve`, whose scheduler runs these passes: its loop and GIL
    # switch interval.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(main(args.customers, args.guides, args.database_url))
