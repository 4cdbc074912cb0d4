"""Shutting the inbox processor down ends even when a worker swallowed its cancellation (as
asyncio.wait_for can on Python 3.11): it is cancelled again instead of waited for forever."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from guidebot import inbox
from guidebot.inbox import InboxProcessor


async def _process(item_id: int, tenant: str, payload: str) -> Any:
    return None


async def test_a_worker_that_swallows_a_cancel_is_cancelled_again(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(inbox, "CLOSE_WAIT_S", 0.05)
    forever = asyncio.Event()
    swallowed = []

    async def stubborn() -> None:
        try:
            await forever.wait()
        except asyncio.CancelledError:
            swallowed.append(True)  # lost, as a racing wait_for would lose it
        await forever.wait()

    processor = InboxProcessor(None, _process)  # type: ignore[arg-type]
    worker = asyncio.create_task(stubborn())
    processor._loops = [worker]
    await asyncio.sleep(0)
    caplog.set_level(logging.WARNING)
    await asyncio.wait_for(processor.close(), timeout=5)
    assert swallowed == [True] and worker.cancelled()
    assert "1 inbox task(s) still running after cancel; again" in caplog.messages


async def test_closing_with_nothing_in_flight_still_waits_for_the_last_flush() -> None:
    flushed = []

    async def flush() -> None:
        await asyncio.sleep(0.05)
        flushed.append(True)

    processor = InboxProcessor(None, _process)  # type: ignore[arg-type]
    processor._flusher = asyncio.create_task(flush())
    await asyncio.wait_for(processor.close(), timeout=5)
    assert flushed == [True]


async def test_a_flush_that_failed_does_not_fail_the_close() -> None:
    async def flush() -> None:
        raise RuntimeError("the database went away")

    processor = InboxProcessor(None, _process)  # type: ignore[arg-type]
    processor._flusher = asyncio.create_task(flush())
    await asyncio.sleep(0)
    await asyncio.wait_for(processor.close(), timeout=5)  # the leases bring the items back
