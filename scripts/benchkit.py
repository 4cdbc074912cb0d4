"""What the benchmark scripts share: the bench tenant's config, a free local port, spawning
and waiting for the processes under test, a timed signed callback POST, the CPU time a
process used, and percentiles."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from guidebot.settings import TenantSettings  # noqa: E402
from tests.support.wecom import encrypt_callback  # noqa: E402

# A sandbox-only tenant; `quotas` lines are appended under [tenants.bench.quotas].
_CONFIG = """
content_library = "{library}"
[database]
url = "{db_url}"
[tenants.bench]
corp_id = "wwbench0000000001"
agent_id = 1000002
token = "QDG6eK"
encoding_aes_key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
secret = "bench-secret"
admin_token = "bench-admin-token"
api_base = "{api_base}"
[tenants.bench.quotas]
api_calls_per_min = 1000000
{quotas}
"""


def bench_config(db_url: str, *, api_base: str = "https://qyapi.weixin.qq.com/cgi-bin/",
                 quotas: str = "", library: Path = ROOT / "content_library") -> str:
    return _CONFIG.format(library=library, db_url=db_url, api_base=api_base, quotas=quotas)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn(args: list[str], log: Path, env: dict[str, str] | None = None
          ) -> subprocess.Popen[bytes]:
    """A process of its own session (so killpg ends it and its children), output to `log`."""
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)


async def wait_up(http: aiohttp.ClientSession, url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            async with http.get(url) as resp:
                if resp.status < 500:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


@dataclass(frozen=True)
class Posted:
    started: float  # wall-clock time (time.time()) just before the POST
    ok: bool        # answered 200
    ack_s: float    # POST → response read


async def post_callback(http: aiohttp.ClientSession, url: str, tenant: TenantSettings,
                        xml: str) -> Posted:
    """`xml` encrypted and signed like WeCom's and POSTed to a guidebot callback URL, timed."""
    signed = encrypt_callback(tenant, xml)
    started = time.time()
    ok = False
    try:
        async with http.post(url, params=signed.query, data=signed.body) as resp:
            await resp.read()
            ok = resp.status == 200
    except aiohttp.ClientError:
        pass
    return Posted(started, ok, time.time() - started)
