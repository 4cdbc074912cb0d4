"""Webhook benchmark: distinct encrypted add events against guidebot and a bare aiohttp handler.

Starts three local processes — the WeCom sandbox, `guidebot serve` on a fresh SQLite database,
and a bare aiohttp app that answers 200 to any POST — then sends the same number of distinct,
validly signed and encrypted `add_external_contact` callbacks to each at the same concurrency,
and prints callbacks/s, the ratio guidebot/bare, and ack latency percentiles. guidebot does its
real work (inbox write, then link, profile fetch, welcome) while it is being measured.

With --stats, once the backlog has drained, it counts the run's follow events into the daily
statistics from scratch (`guidebot stats backfill`'s path, guidebot/stats) and prints how long
that takes: the work the console's statistics job adds to this workload.

    python scripts/bench_webhook.py [--events 20000] [--concurrency 64] [--stats]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchkit import bench_config, free_port, wait_up  # noqa: E402

from guidebot.cli import loop_factory  # noqa: E402
from guidebot.settings import load_settings  # noqa: E402
from tests.support.wecom import add_contact_xml, encrypt_callback  # noqa: E402


def run_bare(port: int) -> None:
    async def ok(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=200, body=b"")

    app = web.Application()
    app.router.add_post("/wecom/{tenant}/callback", ok)
    factory = loop_factory()  # the same event loop guidebot runs on, for a fair baseline
    loop = factory() if factory else asyncio.new_event_loop()
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, loop=loop)


async def blast(url: str, requests: list[tuple[dict[str, str], bytes]],
                concurrency: int) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    failures = 0
    queue = iter(requests)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        async def worker() -> None:
            nonlocal failures
            for query, body in queue:
                started = time.perf_counter()
                async with http.post(url, params=query, data=body) as resp:
                    await resp.read()
                    if resp.status != 200:
                        failures += 1
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return elapsed, latencies, failures


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


def build_requests(config: Path, count: int) -> list[tuple[dict[str, str], bytes]]:
    tenant = load_settings(config).tenant("bench")
    now = int(time.time())
    out = []
    for i in range(count):
        xml = add_contact_xml(corp_id=tenant.corp_id, guide=f"guide{i % 200:03d}",
                              external_userid=f"wmBENCH{i:08d}", state="",
                              welcome_code=f"WC{i:08d}", create_time=now)
        signed = encrypt_callback(tenant, xml)
        out.append((signed.query, signed.body))
    return out


def spawn(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


async def count_inbox(db: Path) -> tuple[int, int]:
    import sqlite3

    with sqlite3.connect(db) as conn:
        total = conn.execute("select count(*) from inbox").fetchone()[0]
        done = conn.execute("select count(*) from inbox where processed_at is not null"
                            ).fetchone()[0]
    return int(total), int(done)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--drain-seconds", type=float, default=20.0)
    parser.add_argument("--stats", action="store_true",
                        help="then time counting the run's rows into the daily statistics")
    parser.add_argument("--bare-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="guidebot-bench-"))
    sandbox_port, bot_port, bare_port = free_port(), free_port(), free_port()
    config = workdir / "config.toml"
    config.write_text(bench_config(f"sqlite+aiosqlite:///{workdir / 'bench.db'}",
                                   api_base=f"http://127.0.0.1:{sandbox_port}/cgi-bin/"),
                      encoding="utf-8")
    py = sys.executable
    env = {**os.environ, "GUIDEBOT_SERVER_PORT": str(bot_port)}
    procs = [
        spawn([py, "-m", "guidebot", "--log-level", "WARNING", "sandbox", "--config",
               str(config), "--port", str(sandbox_port)]),
        spawn([py, "-m", "guidebot", "--log-level", "WARNING", "serve", "--config",
               str(config)], env),
        spawn([py, __file__, "--bare-server", str(bare_port)]),
    ]
    try:
        print(f"building {args.events} distinct encrypted add events ...", flush=True)
        requests = build_requests(config, args.events)
        async with aiohttp.ClientSession() as http:
            await wait_up(http, f"http://127.0.0.1:{bot_port}/healthz")
            await wait_up(http, f"http://127.0.0.1:{bare_port}/")
        results = {}
        for name, port in (("bare aiohttp", bare_port), ("guidebot", bot_port)):
            url = f"http://127.0.0.1:{port}/wecom/bench/callback"
            results[name] = await blast(url, requests, args.concurrency)
        report(results, args)
        await report_backlog(workdir / "bench.db", args.drain_seconds)
        if args.stats:
            await report_stats(config, results["guidebot"][0], args.drain_seconds)
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=10)


async def report_backlog(db: Path, seconds: float) -> None:
    """How much was handled while the callbacks came (handling starts at once, beside the
    acknowledgements), and how the rest drains afterwards."""
    total, start = await count_inbox(db)
    print(f"guidebot inbox rows: {total}; processed when the burst ended: {start}")
    await asyncio.sleep(seconds)
    _, done = await count_inbox(db)
    print(f"processed {done - start} more in the next {seconds:.0f} s "
          f"({(done - start) / seconds:.0f}/s: link, profile fetch, welcome attempt each)")


async def report_stats(config: Path, burst_s: float, drain_s: float) -> None:
    from guidebot.db.engine import Database
    from guidebot.stats.service import StatsService

    settings = load_settings(config)
    db = Database(settings.database_url)
    try:
        stats = StatsService(settings, db)
        await stats.upkeep()  # whatever the serving process's job has not counted yet
        began = time.perf_counter()
        counted = await stats.backfill("bench")
        took = time.perf_counter() - began
    finally:
        await db.dispose()
    print(f"daily statistics: counting this run's {counted:,} rows from scratch took "
          f"{took:.2f} s = {100 * took / (burst_s + drain_s):.1f}% of the burst and drain "
          f"({burst_s + drain_s:.1f} s)")


def report(results: dict[str, tuple[float, list[float], int]], args: argparse.Namespace) -> None:
    rates = {}
    for name, (elapsed, latencies, failures) in results.items():
        rates[name] = len(latencies) / elapsed
        print(f"{name:>13}: {rates[name]:8.0f} callbacks/s  p50 "
              f"{percentile(latencies, 50) * 1000:6.1f} ms  p99 "
              f"{percentile(latencies, 99) * 1000:6.1f} ms  non-200: {failures}")
    ratio = rates["guidebot"] / rates["bare aiohttp"]
    p99 = percentile(results["guidebot"][1], 99) * 1000
    print(f"ratio guidebot/bare: {ratio:.3f} (target ≥ 0.15); guidebot p99 ack {p99:.1f} ms "
          f"(target ≤ 50 ms); events {args.events}, concurrency {args.concurrency}")


if __name__ == "__main__":
    if "--bare-server" in sys.argv:
        run_bare(int(sys.argv[sys.argv.index("--bare-server") + 1]))
    else:
        asyncio.run(main())
