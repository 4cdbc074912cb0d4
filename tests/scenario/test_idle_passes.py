"""Periodic passes with nothing to do leave SQLite's one writer alone: the SOP dispatch job runs
every 2 s and the outbox retry every 5 s, and while they held the writer for a pass that found
nothing, callbacks waited for their acknowledgement (the webhook flood benchmark's slowest
1 %). With work to do, they wait for the writer like anyone else."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from guidebot.db.models import OutboxItem
from guidebot.db.types import utcnow
from tests.support.stack import Stack, start_stack


@pytest.fixture
async def sqlite_stack(aiohttp_server: Any, tmp_path: Path,
                       sqlite_url: str) -> AsyncIterator[Stack]:
    stack = await start_stack(aiohttp_server, tmp_path, sqlite_url)
    yield stack
    await stack.http.close()


async def _hold_the_writer(stack: Stack, held: asyncio.Event, release: asyncio.Event) -> None:
    async with stack.runtime.services.db.write():
        held.set()
        await release.wait()


async def test_a_pass_with_nothing_due_does_not_wait_for_the_writer(
        sqlite_stack: Stack) -> None:
    stack = sqlite_stack
    status, code = await stack.admin("/channels", method="POST", json={
        "guide": "lina", "store": "S01", "tags": ["门店扫码"]})
    assert status == 201, code
    await stack.sandbox.simulate_add_contact("acme", config_id=code["config_id"], name="吴昊")
    await stack.runtime.drain()  # enrolled in 新客培育: its next step is due tomorrow
    sop = stack.runtime.services.sop
    await sop.tick("acme")  # the first pass records the SOP versions (a write, once)

    held, release = asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(_hold_the_writer(stack, held, release))
    await held.wait()
    try:
        assert await asyncio.wait_for(sop.tick("acme"), timeout=10) == 0
        # With a step due the pass writes, so it waits for the writer like any other.
        sop.clock = lambda: datetime.now(UTC) + timedelta(days=1, hours=13)
        planning = asyncio.create_task(sop.plan("acme"))
        await asyncio.sleep(0.3)
        assert not planning.done()
    finally:
        release.set()
        await holder
    assert await planning == 1


async def test_an_outbox_retry_pass_with_nothing_due_does_not_wait_for_the_writer(
        sqlite_stack: Stack) -> None:
    stack = sqlite_stack
    services = stack.runtime.services
    held, release = asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(_hold_the_writer(stack, held, release))
    await held.wait()
    try:
        assert await asyncio.wait_for(services.outbox.retry_due(services.calls),
                                      timeout=10) == 0
    finally:
        release.set()
        await holder

    async with services.db.write() as s:  # a welcome that failed and is due again
        s.add(OutboxItem(tenant="acme", key="welcome:idle-pass", kind="welcome",
                         payload='{"welcome_code": "idle-pass"}', status="failed",
                         due_at=utcnow() - timedelta(seconds=1),
                         deadline_at=utcnow() - timedelta(seconds=1)))
    held.clear()
    release.clear()
    holder = asyncio.create_task(_hold_the_writer(stack, held, release))
    await held.wait()
    try:
        retrying = asyncio.create_task(services.outbox.retry_due(services.calls))
        await asyncio.sleep(0.3)
        assert not retrying.done()
    finally:
        release.set()
        await holder
    assert await retrying == 1  # claimed, then expired: its window had closed
    async with services.db.read() as s:
        row = (await s.execute(select(OutboxItem).where(
            OutboxItem.key == "welcome:idle-pass"))).scalar_one()
    assert row.status == "expired"
