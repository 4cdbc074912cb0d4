"""The pipeline across real processes: a `guidebot serve` killed with SIGKILL while a welcome
backs off, restarted, still sends it once inside the window; two processes on one PostgreSQL
share a burst and send every welcome once."""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from guidebot.sandbox import SANDBOX_KEY, create_sandbox_app
from guidebot.settings import load_settings
from tests.conftest import PG_ENV
from tests.support.processes import HANG_GUARD_S, free_port, serve, write_config
from tests.support.stack import reset_postgres
from tests.support.wecom import encrypt_callback

WELCOME = "externalcontact/send_welcome_msg"


async def _sandbox(aiohttp_server: Any, tmp_path: Path, db_url: str,
                   public_url: str) -> tuple[Any, str, Path]:
    bootstrap = write_config(tmp_path / "bootstrap.toml", db_url=db_url, api_base="http://x/",
                             public_url=public_url)
    app = create_sandbox_app(load_settings(bootstrap))
    server = await aiohttp_server(app)
    url = str(server.make_url("")).rstrip("/")
    config = write_config(tmp_path / "config.toml", db_url=db_url, api_base=f"{url}/cgi-bin/",
                          public_url=public_url)
    return app[SANDBOX_KEY], url, config


async def _until(predicate: Any, what: str, tails: Any) -> None:
    deadline = time.monotonic() + HANG_GUARD_S
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {HANG_GUARD_S} s:\n{tails()}")
        await asyncio.sleep(0.05)


async def test_sigkill_during_a_welcome_backoff_then_restart_sends_it_once(
        aiohttp_server: Any, tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'guidebot.db'}"
    first_port, second_port = free_port(), free_port()
    sandbox, sandbox_url, config = await _sandbox(aiohttp_server, tmp_path, db_url,
                                                  f"http://127.0.0.1:{first_port}")
    first = serve(config, first_port, tmp_path / "first.log")
    second = None
    try:
        async with aiohttp.ClientSession() as http:
            await first.healthy(http)
            async with http.post(f"{sandbox_url}/_sandbox/faults", json={
                    "tenant": "acme", "path": WELCOME, "errcode": 45009, "times": 1000}) as r:
                assert r.status == 200
            added = await sandbox.simulate_add_contact("acme", userid="lina", name="孙悦")
            assert added["delivery"]["status"] == 200
            code = added["welcome_code"]

            def tried() -> bool:
                return any(c["body"]["welcome_code"] == code and c["errcode"] == 45009
                           for c in sandbox.calls("acme", WELCOME))

            await _until(tried, "a rate-limited welcome attempt", first.tail)
            first.kill()  # mid-backoff: the outbox row is left "sending", the inbox item leased
            async with http.delete(f"{sandbox_url}/_sandbox/faults") as r:
                assert r.status == 200
            second = serve(config, second_port, tmp_path / "second.log", migrate=False)
            await second.healthy(http)

            def sent() -> list[dict[str, Any]]:
                return [c for c in sandbox.calls("acme", WELCOME)
                        if c["body"]["welcome_code"] == code and c["errcode"] == 0]

            await _until(lambda: bool(sent()), "the welcome", second.tail)
            await asyncio.sleep(2)  # the restarted inbox item and retries: nothing more
            assert len(sent()) == 1  # once, and inside the window (the sandbox refuses later)
            async with http.get(f"{second.url}/api/v1/acme/customers/"
                                f"{added['external_userid']}",
                                headers={"Authorization": "Bearer acme-admin-token"}) as r:
                view = await r.json()
            assert [g["userid"] for g in view["guides"]] == ["lina"]
    finally:
        first.stop()
        if second is not None:
            second.stop()


async def test_two_processes_on_postgresql_share_a_burst_each_welcome_once(
        aiohttp_server: Any, tmp_path: Path) -> None:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"two processes share one PostgreSQL (SQLite has one writer by design): "
                    f"set {PG_ENV} to run it")
    await reset_postgres(url)
    ports = [free_port(), free_port()]
    sandbox, sandbox_url, config = await _sandbox(aiohttp_server, tmp_path, url,
                                                  f"http://127.0.0.1:{ports[0]}")
    tenant = load_settings(config).tenant("acme")
    # Started together: the second waits for the first to migrate (--no-migrate).
    servers = [serve(config, ports[0], tmp_path / "a.log"),
               serve(config, ports[1], tmp_path / "b.log", migrate=False)]
    burst = 300
    try:
        async with aiohttp.ClientSession() as http:
            await servers[0].healthy(http)
            await servers[1].healthy(http)

            async def add(i: int) -> str:
                fields = {"Event": "change_external_contact",
                          "ChangeType": "add_external_contact", "UserID": f"guide{i % 9}",
                          "ExternalUserID": f"wmPAIR{i:05d}", "WelcomeCode": f"WCPAIR{i:05d}",
                          "CreateTime": int(time.time())}
                registered = await sandbox.simulate_event("acme", fields, deliver=False)
                signed = encrypt_callback(tenant, registered["xml"])
                async with http.post(f"{servers[i % 2].url}/wecom/acme/callback",
                                     params=signed.query, data=signed.body) as resp:
                    assert resp.status == 200
                return str(fields["WelcomeCode"])

            codes = await asyncio.gather(*(add(i) for i in range(burst)))

            def sent() -> Counter[str]:
                return Counter(c["body"]["welcome_code"] for c in sandbox.calls("acme", WELCOME)
                               if c["errcode"] == 0)

            await _until(lambda: len(sent()) == burst, "every welcome",
                         lambda: servers[0].tail() + servers[1].tail())
            await asyncio.sleep(2)
            assert sent() == Counter({code: 1 for code in codes})
    finally:
        for server in servers:
            server.stop()
