"""Real `guidebot serve` processes for tests that kill, restart or pair them."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from tests.support.stack import ROOT

HANG_GUARD_S = 120  # not a timing assertion: how long to wait before giving up

CONFIG = """
content_library = "{library}"

[server]
public_url = "{public_url}"

[database]
url = "{db_url}"

[tenants.acme]
corp_id = "wwacme5823bf96d3bd"
agent_id = 1000002
token = "QDG6eK"
encoding_aes_key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
secret = "acme-secret-for-tests"
admin_token = "acme-admin-token"
order_secret = "acme-order-secret"
api_base = "{api_base}"

[tenants.acme.quotas]
api_calls_per_min = 100000
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(path: Path, *, db_url: str, api_base: str, public_url: str,
                 library: Path = ROOT / "content_library") -> Path:
    path.write_text(CONFIG.format(library=library, db_url=db_url, api_base=api_base,
                                  public_url=public_url), encoding="utf-8")
    return path


@dataclass
class Served:
    """One `guidebot serve` subprocess and its log."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def healthy(self, http: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + HANG_GUARD_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"guidebot exited {self.process.returncode}:\n{self.tail()}")
            try:
                async with http.get(f"{self.url}/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        pytest.fail(f"guidebot on port {self.port} never became healthy:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, nothing flushed, leases left behind."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


def serve(config: Path, port: int, log: Path, *, migrate: bool = True) -> Served:
    args = [sys.executable, "-m", "guidebot", "--log-level", "INFO", "serve", "--config",
            str(config), "--host", "127.0.0.1", "--port", str(port)]
    if not migrate:
        args.append("--no-migrate")
    process = subprocess.Popen(args, cwd=ROOT, stdout=log.open("ab"),
                               stderr=subprocess.STDOUT)
    return Served(process, port, log)
