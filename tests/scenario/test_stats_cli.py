"""`guidebot stats backfill` rebuilds the daily statistics from the data already stored."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import pytest

from guidebot.cli import main
from tests.support.console import seed, upkeep
from tests.support.stack import Stack


async def test_backfill_command_rebuilds_what_the_job_counted(
        stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GUIDEBOT_DATABASE_URL", raising=False)
    stats = stack.runtime.services.stats
    assert stats is not None
    seeded = await seed(stack)
    await upkeep(stack)
    today = datetime.now(stack.tenant().tz).date()
    counted = await stats.overview("acme", today, today)
    assert counted["totals"]["adds_code"] == seeded.adds_code
    config = str(tmp_path / "config.toml")  # the stack's own config: the same database
    assert await asyncio.to_thread(main, ["stats", "backfill", "--config", config]) == 0
    out = capsys.readouterr().out
    assert "stats rebuilt for acme" in out and "stats rebuilt for beta" in out
    assert await stats.overview("acme", today, today) == counted
    assert await asyncio.to_thread(
        main, ["stats", "backfill", "--tenant", "nosuch", "--config", config]) == 2
