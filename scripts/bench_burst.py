"""Campaign-burst benchmark: add callbacks at a fixed rate → the first send_welcome_msg.

Starts the WeCom sandbox and one or more `guidebot serve` processes on a fresh database
(SQLite by default; `--database-url` for PostgreSQL, where `--processes 2` runs two servers
sharing it), then for each rate sends distinct add events for `--seconds`: each one is
registered with the sandbox (so its WelcomeCode is live, issued now, like WeCom's), encrypted
and signed like WeCom's and POSTed to a server (round robin). It prints, per rate, the
latency from the POST to guidebot's first `send_welcome_msg` for that code as the sandbox
logged it (p50/p99/max), the welcomes missed (none, or later than WeCom's 20 s window), and
the ack p99.

    python scripts/bench_burst.py [--rates 20,100,200,300] [--seconds 10]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test --processes 2]

Loopback only; every loop is bounded by count and time.
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
from datetime import datetime
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchkit import (  # noqa: E402
    bench_config,
    cpu_seconds,
    free_port,
    percentile,
    post_callback,
    spawn,
    wait_up,
)

from guidebot.settings import load_settings  # noqa: E402

WINDOW_S = 20.0
WELCOME_PATH = "externalcontact/send_welcome_msg"


class Step:
    """One rate: what was posted when, and what the sandbox saw."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.posted: dict[str, float] = {}  # welcome code → wall-clock POST time
        self.acks: list[float] = []
        self.failed_posts = 0
        self.first_welcome: dict[str, float] = {}


async def one_add(http: aiohttp.ClientSession, sandbox: str, servers: list[str], tenant: object,
                  step: Step, i: int) -> None:
    fields = {"Event": "change_external_contact", "ChangeType": "add_external_contact",
              "UserID": f"guide{i % 200:03d}", "ExternalUserID": f"wmBURST{step.rate:04d}{i:07d}",
              "WelcomeCode": f"WC{step.rate:04d}{i:07d}", "CreateTime": int(time.time())}
    async with http.post(f"{sandbox}/_sandbox/bench/simulate/event",
                         json={"fields": fields, "deliver": False}) as resp:
        xml = (await resp.json())["xml"]
    posted = await post_callback(http, servers[i % len(servers)], tenant,  # type: ignore[arg-type]
                                 xml)
    step.posted[fields["WelcomeCode"]] = posted.started
    if not posted.ok:
        step.failed_posts += 1
    step.acks.append(posted.ack_s)


async def collect(http: aiohttp.ClientSession, sandbox: str, steps: list[Step],
                  stop: asyncio.Event) -> None:
    """Poll the sandbox call log (it keeps the latest 10,000 calls) for welcome calls."""
    while True:
        async with http.get(f"{sandbox}/_sandbox/calls",
                            params={"tenant": "bench", "path": WELCOME_PATH}) as resp:
            calls = (await resp.json())["calls"]
        for call in calls:
            code = (call.get("body") or {}).get("welcome_code")
            if call.get("errcode") not in (0, None):
                continue
            at = datetime.fromisoformat(call["at"].replace("Z", "+00:00")).timestamp()
            for step in steps:
                if code in step.posted and code not in step.first_welcome:
                    step.first_welcome[code] = at
        if stop.is_set():
            return
        await asyncio.sleep(0.5)


async def run_step(http: aiohttp.ClientSession, sandbox: str, servers: list[str], tenant: object,
                   step: Step, seconds: float) -> None:
    total = int(step.rate * seconds)
    started = time.monotonic()
    tasks = []
    for i in range(total):
        delay = started + i / step.rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one_add(http, sandbox, servers, tenant, step, i)))
    await asyncio.gather(*tasks)


def report(step: Step, elapsed: float) -> str:
    latencies = [step.first_welcome[c] - t for c, t in step.posted.items()
                 if c in step.first_welcome]
    missed = sum(1 for c, t in step.posted.items()
                 if c not in step.first_welcome or step.first_welcome[c] - t > WINDOW_S)
    return (f"{step.rate:>5} adds/s ({len(step.posted):>5} sent in {elapsed:4.1f} s): "
            f"welcome p50 {percentile(latencies, 50) * 1000:8.1f} ms  "
            f"p99 {percentile(latencies, 99) * 1000:8.1f} ms  "
            f"max {max(latencies, default=float('nan')) * 1000:8.1f} ms  "
            f"missed {missed:>5} / {len(step.posted)}  "
            f"ack p99 {percentile(step.acks, 99) * 1000:6.1f} ms  non-200 {step.failed_posts}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="20,100,200,300")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--settle-seconds", type=float, default=25.0,
                        help="how long to wait after a step for late welcomes")
    args = parser.parse_args()
    if args.processes > 1 and not args.database_url.startswith("postgresql"):
        parser.error("several processes need a PostgreSQL --database-url")
    workdir = Path(tempfile.mkdtemp(prefix="guidebot-burst-"))
    db_url = args.database_url or f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    if db_url.startswith("postgresql"):
        from tests.support.stack import reset_postgres

        await reset_postgres(db_url)
    sandbox_port = free_port()
    ports = [free_port() for _ in range(args.processes)]
    config = workdir / "config.toml"
    config.write_text(bench_config(db_url, api_base=f"http://127.0.0.1:{sandbox_port}/cgi-bin/")
                      + f'\n[server]\npublic_url = "http://127.0.0.1:{ports[0]}"\n',
                      encoding="utf-8")
    tenant = load_settings(config).tenant("bench")
    py = sys.executable
    subprocess.run([py, "-m", "guidebot", "db", "upgrade", "--config", str(config)], cwd=ROOT,
                   check=True, stdout=subprocess.DEVNULL)
    procs = [spawn([py, "-m", "guidebot", "--log-level", "WARNING", "sandbox", "--config",
                    str(config), "--port", str(sandbox_port)], workdir / "sandbox.log")]
    for n, port in enumerate(ports):
        procs.append(spawn([py, "-m", "guidebot", "--log-level", args.log_level, "serve",
                            "--config", str(config)], workdir / f"serve{n}.log",
                           {**os.environ, "GUIDEBOT_SERVER_PORT": str(port)}))
    sandbox = f"http://127.0.0.1:{sandbox_port}"
    servers = [f"http://127.0.0.1:{p}/wecom/bench/callback" for p in ports]
    print(f"database {db_url.split('@')[-1]}, {args.processes} guidebot process(es); "
          f"logs in {workdir}")
    try:
        connector = aiohttp.TCPConnector(limit=256)
        async with aiohttp.ClientSession(connector=connector) as http:
            for port in ports:
                await wait_up(http, f"http://127.0.0.1:{port}/healthz")
            await wait_up(http, f"{sandbox}/_sandbox/calls")
            for rate in (int(r) for r in args.rates.split(",")):
                step = Step(rate)
                stop = asyncio.Event()
                collector = asyncio.create_task(collect(http, sandbox, [step], stop))
                cpu_before = {p.pid: cpu_seconds(p.pid) for p in procs}
                started = time.monotonic()
                await run_step(http, sandbox, servers, tenant, step, args.seconds)
                elapsed = time.monotonic() - started
                deadline = time.monotonic() + args.settle_seconds
                while (len(step.first_welcome) < len(step.posted)
                       and time.monotonic() < deadline):
                    await asyncio.sleep(0.5)
                stop.set()
                await collector
                print(report(step, elapsed), flush=True)
                used = [cpu_seconds(p.pid) - cpu_before[p.pid] for p in procs]
                print(f"      CPU seconds during the step: sandbox {used[0]:.1f}, guidebot "
                      + ", ".join(f"{u:.1f}" for u in used[1:])
                      + f" ({sum(used[1:]) / max(len(step.posted), 1) * 1000:.1f} ms per add)",
                      flush=True)
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=15)


if __name__ == "__main__":
    asyncio.run(main())
