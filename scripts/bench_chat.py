"""微信客服 reply latency: a customer's message → guidebot's first kf/send_msg to them.

Starts the WeCom sandbox and a `guidebot serve` process on a fresh database (SQLite by
default, `--database-url` for PostgreSQL), with `[llm]` pointing at a local OpenAI-compatible
server that answers at once (tests/support/llm_server.py, run in this process). Then
`--customers` customers write at once, each a product question no rule, FAQ or catalog
price/stock answer catches, so it goes through retrieval, the model and the grounding check:
each message is stored in the sandbox and its `kf_msg_or_event` callback (encrypted and signed
like WeCom's) POSTed to guidebot right away. It prints the latency from each callback POST to
the first `kf/send_msg` to that customer as the sandbox logged it (p50/p95/max), the
customers not answered, and the route guidebot recorded.

    python scripts/bench_chat.py [--customers 50] [--rounds 1]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]

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
from aiohttp import web

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

from guidebot.sandbox.callbacks import to_xml  # noqa: E402
from guidebot.settings import TenantSettings, load_settings  # noqa: E402
from tests.support.llm_server import FakeLlm, Script  # noqa: E402

KFID = "wkBENCHshop0000000000001"
SEND_PATH = "kf/send_msg"
# Names a catalog product without asking its price or stock: the model answers it.
QUESTION = "丝绒哑光口红适合黄皮吗"
ANSWER = "这款丝绒哑光口红是显白的正红色，黄皮也很适合，日常通勤和约会都好搭配。"
SETTLE_S = 30.0


class Round:
    def __init__(self, number: int) -> None:
        self.number = number
        self.posted: dict[str, float] = {}  # customer → wall-clock callback POST time
        self.answered: dict[str, float] = {}  # customer → first kf/send_msg time
        self.failed_posts = 0


async def one_customer(http: aiohttp.ClientSession, sandbox: str, server: str,
                       tenant: TenantSettings, rnd: Round, customer: str) -> None:
    async with http.post(f"{sandbox}/_sandbox/bench/simulate/kf_message",
                         json={"open_kfid": KFID, "external_userid": customer,
                               "text": QUESTION, "deliver": False}) as resp:
        token = (await resp.json())["delivery"]["token"]
    xml = to_xml({"ToUserName": tenant.corp_id, "CreateTime": int(time.time()),
                  "MsgType": "event", "Event": "kf_msg_or_event", "Token": token,
                  "OpenKfId": KFID})
    posted = await post_callback(http, server, tenant, xml)
    rnd.posted[customer] = posted.started
    if not posted.ok:
        rnd.failed_posts += 1


async def collect(http: aiohttp.ClientSession, sandbox: str, rnd: Round) -> None:
    async with http.get(f"{sandbox}/_sandbox/calls",
                        params={"tenant": "bench", "path": SEND_PATH}) as resp:
        calls = (await resp.json())["calls"]
    for call in calls:
        touser = (call.get("body") or {}).get("touser")
        if call.get("errcode") not in (0, None) or touser not in rnd.posted:
            continue
        at = datetime.fromisoformat(call["at"].replace("Z", "+00:00")).timestamp()
        rnd.answered[touser] = min(at, rnd.answered.get(touser, at))


async def run_round(http: aiohttp.ClientSession, sandbox: str, server: str,
                    tenant: TenantSettings, rnd: Round, customers: int) -> None:
    ids = [f"wmKFbench{rnd.number:02d}{i:05d}" for i in range(customers)]
    await asyncio.gather(*(one_customer(http, sandbox, server, tenant, rnd, c) for c in ids))
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        await collect(http, sandbox, rnd)
        if len(rnd.answered) == len(rnd.posted):
            return
        await asyncio.sleep(0.2)


def report(rnd: Round, label: str) -> str:
    latencies = [rnd.answered[c] - t for c, t in rnd.posted.items() if c in rnd.answered]
    return (f"{label}: {len(rnd.posted)} customers at once: first reply p50 "
            f"{percentile(latencies, 50) * 1000:7.1f} ms  p95 "
            f"{percentile(latencies, 95) * 1000:7.1f} ms  max "
            f"{max(latencies, default=float('nan')) * 1000:7.1f} ms  unanswered "
            f"{len(rnd.posted) - len(latencies)}  non-200 {rnd.failed_posts}")


async def start_llm() -> tuple[web.AppRunner, FakeLlm, str]:
    fake = FakeLlm(default=Script(answer=ANSWER))
    runner = web.AppRunner(fake.app(), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, fake, f"http://127.0.0.1:{port}/v1"


async def routes(db_url: str) -> dict[str, int]:
    """What guidebot recorded for the benchmark's messages once all are finished (a message
    is finished after its replies went out): route → count."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(db_url)
    try:
        for _ in range(int(SETTLE_S / 0.2)):
            async with engine.connect() as conn:
                rows = (await conn.execute(text(
                    "SELECT route, count(*) FROM kf_messages GROUP BY route"))).all()
            if all(r[0] for r in rows):
                break
            await asyncio.sleep(0.2)
    finally:
        await engine.dispose()
    return {str(r[0]) or "(not finished)": int(r[1]) for r in rows}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="guidebot-chat-bench-"))
    db_url = args.database_url or f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    if db_url.startswith("postgresql"):
        from tests.support.stack import reset_postgres

        await reset_postgres(db_url)
    llm_runner, fake, llm_url = await start_llm()
    sandbox_port, port = free_port(), free_port()
    config = workdir / "config.toml"
    config.write_text(
        bench_config(db_url, api_base=f"http://127.0.0.1:{sandbox_port}/cgi-bin/")
        + f'\n[tenants.bench.kf]\nopen_kfids = ["{KFID}"]\n'
        + f'\n[server]\npublic_url = "http://127.0.0.1:{port}"\n'
        + f'\n[llm]\nbase_url = "{llm_url}"\nmodel = "local-bench"\napi_key = "sk-local"\n'
        + "timeout_s = 10\n", encoding="utf-8")
    tenant = load_settings(config).tenant("bench")
    py = sys.executable
    subprocess.run([py, "-m", "guidebot", "db", "upgrade", "--config", str(config)], cwd=ROOT,
                   check=True, stdout=subprocess.DEVNULL)
    serve = spawn([py, "-m", "guidebot", "--log-level", args.log_level, "serve", "--config",
                   str(config)], workdir / "serve.log",
                  {**os.environ, "GUIDEBOT_SERVER_PORT": str(port)})
    procs = [spawn([py, "-m", "guidebot", "--log-level", "WARNING", "sandbox", "--config",
                    str(config), "--port", str(sandbox_port)], workdir / "sandbox.log"), serve]
    sandbox = f"http://127.0.0.1:{sandbox_port}"
    server = f"http://127.0.0.1:{port}/wecom/bench/callback"
    print(f"database {db_url.split('@')[-1]}, 1 guidebot process (pid {serve.pid}), model at "
          f"{llm_url} (answers at once); logs in {workdir}")
    try:
        connector = aiohttp.TCPConnector(limit=256)
        async with aiohttp.ClientSession(connector=connector) as http:
            await wait_up(http, f"http://127.0.0.1:{port}/healthz")
            await wait_up(http, f"{sandbox}/_sandbox/calls")
            warm = Round(0)  # first use: connections, the card picture's upload
            await run_round(http, sandbox, server, tenant, warm, 1)
            print(report(warm, "warm-up"), flush=True)
            await routes(db_url)
            for number in range(1, args.rounds + 1):
                rnd = Round(number)
                cpu_before = cpu_seconds(serve.pid)
                sandbox_before = cpu_seconds(procs[0].pid)
                await run_round(http, sandbox, server, tenant, rnd, args.customers)
                print(report(rnd, f"round {number}"), flush=True)
                await routes(db_url)  # every message finished (its outcome written)
                used = cpu_seconds(serve.pid) - cpu_before
                print(f"      guidebot CPU during the round: {used:.2f} s "
                      f"({used / max(len(rnd.posted), 1) * 1000:.1f} ms per message); the "
                      f"sandbox's {cpu_seconds(procs[0].pid) - sandbox_before:.2f} s",
                      flush=True)
        print(f"routes recorded: {await routes(db_url)}; model requests {len(fake.requests)}")
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=15)
        await llm_runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
