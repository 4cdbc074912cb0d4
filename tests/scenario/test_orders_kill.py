"""A real `guidebot serve` killed with SIGKILL between an order's commit and the handling of
its OrderPaid event, then restarted: the SOP exit happens exactly once.

On PostgreSQL the kill point is pinned: the test holds a row lock on the customer's
enrollment, so the first process has committed the order and staged its event but cannot
finish the exit. On SQLite (one database lock for everything) the process is killed as soon
as the order is committed, wherever the handling is then; the exit must still be once."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select, text

from guidebot.commerce.signature import HEADER, sign
from guidebot.db.engine import Database
from guidebot.db.migrate import upgrade_async
from guidebot.db.models import InboxItem
from guidebot.db.models_commerce import LedgerEntry, Order
from guidebot.db.models_sop import SopEnrollment
from guidebot.sandbox import create_sandbox_app
from guidebot.settings import load_settings
from tests.support.commerce import paid
from tests.support.processes import Served, free_port, serve, write_config
from tests.support.stack import library_copy

HANG_GUARD_S = 60  # how long to wait before giving up, not a timing assertion
CUSTOMER, ORDER_NO = "wmKILL0001", "O-KILL-1"
EXIT_LINE = "exit order_paid tenant=acme enrollments=1"

SOP = """
id = "kill_exit"
title = "退出测试"
enabled = true

[trigger]
on = "manual"

[exit]
on = ["order_paid"]

[[steps]]
at = "+2d"
channel = "guide_task"
message = "sop_care_tips"
"""

async def _until(check: Any, what: str, logs: list[Path]) -> None:
    deadline = time.monotonic() + HANG_GUARD_S
    while not await check():
        if time.monotonic() > deadline:
            tails = "\n".join(log.read_text()[-2000:] for log in logs if log.exists())
            pytest.fail(f"{what}: not within {HANG_GUARD_S} s\n{tails}")
        await asyncio.sleep(0.05)


async def _enrollment(db: Database) -> SopEnrollment | None:
    async with db.read() as s:
        return (await s.execute(select(SopEnrollment).where(
            SopEnrollment.external_userid == CUSTOMER,
            SopEnrollment.sop_id == "kill_exit"))).scalar_one_or_none()


async def _paid_items(db: Database) -> list[InboxItem]:
    async with db.read() as s:
        rows = (await s.execute(select(InboxItem).where(
            InboxItem.payload.like('{"internal":%')))).scalars()  # type: ignore[attr-defined]
        return [r for r in rows if json.loads(r.payload)["internal"] == "OrderPaid"]


async def _committed(db: Database) -> bool:
    async with db.read() as s:
        order = await s.get(Order, ("acme", ORDER_NO))
    return order is not None and len(await _paid_items(db)) == 1


async def test_sigkill_between_order_commit_and_event_handling_exits_once(
        aiohttp_server: Any, tmp_path: Path, db_url: str) -> None:
    postgres = not db_url.startswith("sqlite")
    await upgrade_async(db_url)
    library = library_copy(tmp_path, {"sops/kill_exit.toml": SOP})
    port = free_port()
    bootstrap = tmp_path / "bootstrap.toml"  # the sandbox needs the tenants before its URL
    base = f"http://127.0.0.1:{port}"
    write_config(bootstrap, db_url=db_url, api_base="http://x/", public_url=base,
                 library=library)
    sandbox_app = create_sandbox_app(load_settings(bootstrap))
    sandbox_server = await aiohttp_server(sandbox_app)
    config = tmp_path / "config.toml"
    write_config(config, db_url=db_url, api_base=str(sandbox_server.make_url("/cgi-bin/")),
                 public_url=base, library=library)
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    db = Database(db_url)
    admin = {"Authorization": "Bearer acme-admin-token"}
    first = serve(config, port, logs[0], migrate=False)
    second: Served | None = None
    try:
        async with aiohttp.ClientSession() as http:
            await first.healthy(http)
            async with http.post(sandbox_server.make_url("/_sandbox/acme/simulate/add_contact"),
                                 json={"userid": "lina", "external_userid": CUSTOMER}) as resp:
                assert resp.status == 200, await resp.text()
            deadline = time.monotonic() + HANG_GUARD_S  # the add is handled in the background
            while True:
                async with http.get(f"{base}/api/v1/acme/customers/{CUSTOMER}",
                                    headers=admin) as resp:
                    if resp.status == 200:
                        break
                assert time.monotonic() < deadline, "the add was never handled"
                await asyncio.sleep(0.1)
            async with http.post(f"{base}/api/v1/acme/sops/kill_exit/enroll", headers=admin,
                                 json={"external_userid": CUSTOMER, "guide": "lina"}) as resp:
                assert resp.status == 201, await resp.text()
            enrolled = await _enrollment(db)
            assert enrolled is not None and enrolled.status == "active"

            async with db.engine.connect() as lock:
                if postgres:  # the exit's UPDATE of this row waits for the test
                    await lock.execute(text(
                        "SELECT id FROM sop_enrollments WHERE id = :id FOR UPDATE"),
                        {"id": enrolled.id})
                raw = json.dumps(paid(ORDER_NO, customer=CUSTOMER)).encode()
                async with http.post(f"{base}/orders/acme", data=raw, headers={
                        HEADER: sign("acme-order-secret", raw)}) as resp:
                    assert resp.status == 202, await resp.text()
                await _until(lambda: _committed(db), "order committed with its event", logs)
                first.kill()
                if postgres:
                    [item] = await _paid_items(db)
                    assert item.processed_at is None  # pinned: committed, not yet handled
                    assert (await _enrollment(db)).status == "active"  # type: ignore[union-attr]
                    await lock.rollback()

            second = serve(config, port, logs[1], migrate=False)
            await second.healthy(http)

            async def handled() -> bool:
                items = await _paid_items(db)
                return len(items) == 1 and items[0].processed_at is not None

            await _until(handled, "OrderPaid handled after the restart", logs)
    finally:
        for process in (first, second):
            if process is not None:
                process.stop()
    [item] = await _paid_items(db)
    assert item.outcome == "on_order_paid"
    exited = await _enrollment(db)
    assert exited is not None and (exited.status, exited.reason) == ("exited", "order_paid")
    exits = sum(log.read_text().count(EXIT_LINE) for log in logs)
    assert exits == 1, [log.read_text()[-2000:] for log in logs]
    async with db.read() as s:
        earns = (await s.execute(select(LedgerEntry).where(
            LedgerEntry.order_no == ORDER_NO))).scalars().all()
    assert [(e.kind, e.guide) for e in earns] == [("earn", "lina")]
    await db.dispose()
