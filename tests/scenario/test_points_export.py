"""The points webhook and export: every ledger entry reaches the store's backend once,
HMAC-signed, with its entry id as Idempotency-Key (a failed delivery is retried with the same
key, a delivered one never sent again); `guidebot points export` lists a month's entries."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from guidebot.cli import main
from guidebot.commerce.signature import HEADER, verify
from tests.scenario.test_materials_review import contribute, period, use
from tests.support.stack import start_stack

SECRET = "mall-webhook-secret-1"


@pytest.fixture
async def mall(aiohttp_server):  # type: ignore[no-untyped-def]
    """The store's backend: answers 500 to the first delivery of entry 2, 200 otherwise."""
    received: list[dict[str, Any]] = []

    async def points(request: web.Request) -> web.Response:
        raw = await request.read()
        entry = json.loads(raw)
        received.append({"entry": entry, "key": request.headers["Idempotency-Key"],
                         "signed": verify(SECRET, raw, request.headers.get(HEADER))})
        failed_before = sum(1 for r in received if r["entry"]["id"] == 2) > 1
        return web.Response(status=500 if entry["id"] == 2 and not failed_before else 200)

    app = web.Application()
    app.router.add_post("/points", points)
    server = await aiohttp_server(app)
    return str(server.make_url("/points")), received


async def test_every_entry_is_delivered_once_and_exported(
        aiohttp_server, tmp_path: Path, db_url: str, mall: Any,  # type: ignore[no-untyped-def]
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    url, received = mall
    extra = (f'\n[tenants.acme.materials]\npoints = {{ A = 7 }}\nwebhook_url = "{url}"\n'
             f'webhook_secret = "{SECRET}"\n')
    stack = await start_stack(aiohttp_server, tmp_path, db_url, config_extra=extra)
    try:
        material = await contribute(stack, "lina", "大衣配围巾")
        await stack.admin(f"/materials/{material}/approve", method="POST", json={"grade": "A"})
        assert (await use(stack, material, "zhaolei", "x1"))[1]["points"] == 7
        assert (await use(stack, material, "wangfang", "x2"))[1]["points"] == 7
        await stack.admin("/points/adjustments", method="POST", json={
            "guide": "lina", "points": 3, "reason": "优质投稿奖励", "operator": "hq",
            "key": "bonus-1"})

        points = stack.runtime.services.points
        assert await points.push("acme") == {"delivered": 1, "failed": 1}  # 2 refused once
        assert await points.push("acme") == {"delivered": 2, "failed": 0}
        assert await points.push("acme") == {"delivered": 0, "failed": 0}
        assert await points.push("beta") == {"delivered": 0, "failed": 0}  # no webhook
        assert [r["entry"]["id"] for r in received] == [1, 2, 2, 3]
        assert all(r["signed"] for r in received)
        assert [r["key"] for r in received] == [
            "points:acme:1", "points:acme:2", "points:acme:2", "points:acme:3"]
        assert [(r["entry"]["kind"], r["entry"]["guide"], r["entry"]["points"])
                for r in received[1:]] == [("use", "lina", 7), ("use", "lina", 7),
                                           ("adjustment", "lina", 3)]

        monkeypatch.delenv("GUIDEBOT_DATABASE_URL", raising=False)
        config = str(tmp_path / "config.toml")
        args = ["points", "export", "--period", period(), "--tenant", "acme", "--csv", "-",
                "--config", config]
        assert await asyncio.to_thread(main, args) == 0
        rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
        assert [(r["kind"], r["user"], r["points"]) for r in rows] == [
            ("use", "zhaolei", "7"), ("use", "wangfang", "7"), ("adjustment", "", "3")]
        assert await asyncio.to_thread(
            main, ["points", "push", "--tenant", "acme", "--config", config]) == 0
        assert "0 delivered" in capsys.readouterr().out
        assert len(received) == 4  # the CLI found nothing left to deliver
        assert await asyncio.to_thread(
            main, ["points", "export", "--config", config]) == 2  # --period is required
    finally:
        await stack.http.close()
