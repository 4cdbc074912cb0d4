"""The LLM meter: concurrent calls' tokens are written together, and a write that fails is
logged with ids and counts only and never fails the caller (the model's answer goes out)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from guidebot.db.engine import Database
from guidebot.db.repo import usage as repo
from guidebot.llm.client import TokenUse
from guidebot.usage.llm_meter import LlmMeter
from tests.support.schema import migrate_async

AT = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)


async def test_calls_are_recorded_per_tenant(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'meter.db'}"
    await migrate_async(url)
    db = Database(url)
    try:
        meter = LlmMeter(db, clock=lambda: AT)
        await asyncio.gather(meter(TokenUse("acme", "reply", "m", 100, 20)),
                             meter(TokenUse("acme", "suggest", "m", 50, 5)),
                             meter(TokenUse("beta", "reply", "m", 7, 1)))
        async with db.read() as s:
            acme = await repo.llm_tokens(s, tenant="acme", start=AT, end=AT.replace(hour=4))
            beta = await repo.llm_tokens(s, tenant="beta", start=AT, end=AT.replace(hour=4))
            later = await repo.llm_tokens(s, tenant="acme", start=AT.replace(hour=4),
                                          end=AT.replace(hour=5))
        assert (acme, beta, later) == ((2, 150, 25), (1, 7, 1), (0, 0, 0))
    finally:
        await db.dispose()


async def test_a_failed_write_is_logged_and_does_not_fail_the_call(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'unmigrated.db'}")  # no llm_calls table
    try:
        with caplog.at_level(logging.WARNING, logger="guidebot.usage.llm_meter"):
            await LlmMeter(db)(TokenUse("acme", "reply", "local-test", 120, 30))
        assert [r.getMessage() for r in caplog.records] == [
            "llm usage not recorded tenant=acme purpose=reply prompt_tokens=120 "
            "completion_tokens=30 error=OperationalError"]
    finally:
        await db.dispose()
