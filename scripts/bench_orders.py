"""Orders benchmark: signed order events at fixed rates against a real `guidebot serve`.

Starts `guidebot serve` on a fresh SQLite database (loopback only), creates a few tracked
links, then for each rate posts distinct HMAC-signed `order.paid` events on a fixed schedule
for `--seconds` and prints, per rate: orders acknowledged per second (sustained over the
step), ack latency p50/p99 (from each order's scheduled send time, so a stalled server
cannot hide its queue), and post → evidence-visible latency p50/p99 (a sample of the orders'
`GET /api/v1/{t}/orders/{no}` polled every 20 ms until it answers 200), how long after
the step's last post every order of the step was attributed, and the serve process's CPU
time per acknowledged order over the step (user + system, from the step's start until all
its orders were attributed: robust when other work shares the machine).

`--baseline-rev REV` also measures the code of that git revision the same way (a temporary
worktree, its own database), at `--baseline-rates` (the per-order path managed about 74/s).

    python scripts/bench_orders.py [--rates 250,500,1000,1500] [--seconds 10]
                                   [--baseline-rev e75253c --baseline-rates 50,100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_burst import cpu_seconds  # noqa: E402
from benchkit import bench_config, free_port  # noqa: E402

from guidebot.commerce.signature import HEADER, sign  # noqa: E402

SECRET, ADMIN = "bench-order-secret", "bench-admin-token"
CUSTOMERS, SAMPLE_EVERY, POLL_S = 20_000, 25, 0.02
MAX_IN_FLIGHT = 4_000  # bounded: a server that stops answering is not flooded for ever


@dataclass
class Step:
    rate: int
    acks: list[float] = field(default_factory=list)  # seconds from the scheduled send
    visible: list[float] = field(default_factory=list)  # seconds from the scheduled send
    errors: int = 0
    error_kinds: Counter[str] = field(default_factory=Counter)  # status or exception name
    first: float = 0.0
    last_ack: float = 0.0
    settled_after: float = 0.0  # from the step's last scheduled post to all attributed
    cpu_s: float = 0.0  # the serve process's CPU seconds over the step, to all attributed


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _event(order_no: str, links: list[str], rng: random.Random) -> bytes:
    body: dict[str, Any] = {
        "type": "order.paid", "order_no": order_no,
        "paid_at": (datetime.now(UTC) - timedelta(seconds=5)).isoformat(),
        "customer": {"external_userid": f"wmBENCH{rng.randrange(CUSTOMERS):06d}"},
        "store_id": "S01",
        "items": [{"sku": "SKU1", "category": "beauty", "quantity": 1,
                   "amount_fen": rng.randrange(1000, 100_000)}]}
    if rng.random() < 0.1:
        body["tracking"] = rng.choice(links)
    return json.dumps(body).encode()


async def _visible(http: aiohttp.ClientSession, base: str, order_no: str) -> None:
    while True:
        async with http.get(f"{base}/api/v1/bench/orders/{order_no}",
                            headers={"Authorization": f"Bearer {ADMIN}"}) as resp:
            await resp.read()
            if resp.status == 200:
                return
        await asyncio.sleep(POLL_S)


async def run_step(http: aiohttp.ClientSession, base: str, rate: int, seconds: float,
                   links: list[str], prefix: str) -> Step:
    step, rng = Step(rate), random.Random(rate)
    count = int(rate * seconds)
    bodies = [_event(f"{prefix}-{rate}-{n}", links, rng) for n in range(count)]
    headers = [{HEADER: sign(SECRET, b), "Content-Type": "application/json"} for b in bodies]
    gate = asyncio.Semaphore(MAX_IN_FLIGHT)
    start = time.monotonic() + 0.2
    step.first = start

    async def one(n: int) -> None:
        due = start + n / rate
        async with gate:
            try:
                async with http.post(f"{base}/orders/bench", data=bodies[n],
                                     headers=headers[n]) as resp:
                    await resp.read()
                    kind = "" if resp.status in (200, 202) else f"HTTP {resp.status}"
            except aiohttp.ClientError as exc:
                kind = type(exc).__name__
            now = time.monotonic()
            if kind:
                step.errors += 1
                step.error_kinds[kind] += 1
                return
            step.acks.append(now - due)
            step.last_ack = max(step.last_ack, now)
            if n % SAMPLE_EVERY == 0:
                await _visible(http, base, f"{prefix}-{rate}-{n}")
                step.visible.append(time.monotonic() - due)

    tasks = []
    for n in range(count):
        delay = start + n / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n)))
    await asyncio.gather(*tasks)
    await _visible(http, base, f"{prefix}-{rate}-{count - 1}")  # attributed in order
    step.settled_after = time.monotonic() - (start + (count - 1) / rate)
    return step


async def _links(http: aiohttp.ClientSession, base: str) -> list[str]:
    tokens = []
    for n in range(20):
        async with http.post(f"{base}/api/v1/bench/links", json={
                "guide": f"guide{n:02d}", "sku": "SKU1", "title": "Card"},
                headers={"Authorization": f"Bearer {ADMIN}"}) as resp:
            tokens.append(str((await resp.json())["token"]))
    return tokens


async def _up(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"guidebot exited {process.returncode}")
            try:
                async with http.get(f"{base}/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("guidebot did not come up")


async def measure(code: Path, folder: Path, rates: list[int], seconds: float,
                  label: str) -> list[Step]:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "config.toml"
    text = bench_config(f"sqlite+aiosqlite:///{folder / 'bench.db'}",
                        api_base="http://127.0.0.1:9/cgi-bin/")  # no WeCom needed
    config.write_text(text.replace(f'admin_token = "{ADMIN}"',
                                   f'admin_token = "{ADMIN}"\norder_secret = "{SECRET}"'),
                      encoding="utf-8")
    port = free_port()
    log = (folder / "guidebot.log").open("wb")
    process = subprocess.Popen(  # cwd first on sys.path: that checkout's guidebot
        [sys.executable, "-m", "guidebot", "--log-level", "WARNING", "serve", "--config",
         str(config), "--host", "127.0.0.1", "--port", str(port)],
        cwd=code, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    steps = []
    try:
        await _up(base, process)
        connector = aiohttp.TCPConnector(limit=MAX_IN_FLIGHT)
        async with aiohttp.ClientSession(connector=connector) as http:
            links = await _links(http, base)
            for rate in rates:
                cpu = cpu_seconds(process.pid)
                steps.append(await run_step(http, base, rate, seconds, links, label))
                steps[-1].cpu_s = cpu_seconds(process.pid) - cpu
                report(label, steps[-1])
                await asyncio.sleep(2)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    return steps


def report(label: str, s: Step) -> None:
    acked = len(s.acks)
    span = max(s.last_ack - s.first, 1e-9)
    print(f"{label:>9} | {s.rate:>5}/s | {acked:>6} acked, {s.errors} errors | "
          f"{acked / span:>7.0f} orders/s | ack p50 {_pct(s.acks, .5) * 1000:7.1f} ms "
          f"p99 {_pct(s.acks, .99) * 1000:7.1f} ms | evidence p50 "
          f"{_pct(s.visible, .5) * 1000:7.1f} ms p99 {_pct(s.visible, .99) * 1000:7.1f} ms | "
          f"all attributed {s.settled_after:5.2f} s after the last post | serve CPU "
          f"{s.cpu_s * 1000 / max(acked, 1):.2f} ms per order", flush=True)
    if s.errors:
        print(f"{'':>9} | errors: {dict(s.error_kinds)}", flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="250,500,1000,1500")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--baseline-rev", default="")
    parser.add_argument("--baseline-rates", default="50,100")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-orders-") as tmp:
        if args.baseline_rev:
            tree = Path(tmp) / "baseline"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree),
                            args.baseline_rev], check=True, capture_output=True)
            try:
                await measure(tree, Path(tmp) / "base-run",
                              [int(r) for r in args.baseline_rates.split(",")], args.seconds,
                              "baseline")
            finally:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                                str(tree)], check=False, capture_output=True)
        await measure(ROOT, Path(tmp) / "run", [int(r) for r in args.rates.split(",")],
                      args.seconds, "intake")
    print(f"load average at end: {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
