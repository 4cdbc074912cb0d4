"""A ledger entry as stored: every field kept (reason and operator cut to their columns), in
the open period of its time in the tenant's zone (a settled month's entry goes to the next
one), and a key appended twice is one entry. Against a real SQLite database."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from guidebot.commerce import ledger
from guidebot.db.engine import Database
from guidebot.db.migrate import upgrade_async
from guidebot.db.models_commerce import Settlement
from guidebot.db.repo import commerce_ledger as repo
from guidebot.settings import load_settings
from tests.support.stack import write_config

# 2026-11-30 17:00 UTC is already 2026-12-01 01:00 in Shanghai
LATE_NOVEMBER_UTC = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)
MID_NOVEMBER = datetime(2026, 11, 15, 4, 0, tzinfo=UTC)


async def test_an_entry_keeps_every_field_in_the_open_period_of_its_local_time(
        tmp_path: Path, sqlite_url: str) -> None:
    tenant = load_settings(write_config(tmp_path, sqlite_url)).tenant("acme")
    await upgrade_async(sqlite_url)
    db = Database(sqlite_url)
    try:
        async with db.write() as s:
            period = await ledger.append(
                s, tenant, key="clawback:N1:R1", kind="clawback", guide="lina",
                amount_fen=-123, at=LATE_NOVEMBER_UTC, order_no="N1", refund_no="R1",
                reason="退" * 300, operator="op" * 40)
            assert period == "2026-12"
            assert await ledger.append(s, tenant, key="adjustment:a1", kind="adjustment",
                                       guide="wangfang", amount_fen=500, at=MID_NOVEMBER,
                                       reason="补发", operator="hq-anna") == "2026-11"
            s.add(Settlement(tenant="acme", period="2026-11", net_fen=0, operator="hq"))
        async with db.write() as s:  # November is settled now: its late entries go on
            assert await ledger.append(s, tenant, key="adjustment:a2", kind="adjustment",
                                       guide="wangfang", amount_fen=-7, at=MID_NOVEMBER,
                                       reason="更正", operator="hq-anna") == "2026-12"
            assert await ledger.append(s, tenant, key="adjustment:a2", kind="adjustment",
                                       guide="lina", amount_fen=9, at=MID_NOVEMBER,
                                       reason="x", operator="y") == "2026-12"
        async with db.read() as s:
            entries = {e.key: e for e in await repo.entries(s, tenant="acme")}
    finally:
        await db.dispose()
    claw = entries["clawback:N1:R1"]
    assert (claw.tenant, claw.kind, claw.guide, claw.order_no, claw.refund_no,
            claw.amount_fen, claw.period) == ("acme", "clawback", "lina", "N1", "R1", -123,
                                              "2026-12")
    assert (claw.reason, claw.operator) == ("退" * 256, "op" * 32)
    assert claw.created_at == LATE_NOVEMBER_UTC
    adjusted = entries["adjustment:a1"]
    assert (adjusted.guide, adjusted.amount_fen, adjusted.period, adjusted.reason,
            adjusted.operator, adjusted.order_no, adjusted.refund_no) == (
        "wangfang", 500, "2026-11", "补发", "hq-anna", None, None)
    late = entries["adjustment:a2"]  # the first append of the key is the entry
    assert (late.guide, late.amount_fen, late.period, late.reason) == (
        "wangfang", -7, "2026-12", "更正")
    assert len(entries) == 3
