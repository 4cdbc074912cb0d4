"""0020 fills material_use_customers from the uses recorded before it (each names at most one
customer), so customers reached stay what they were after the upgrade."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from guidebot.db.migrate import upgrade_async


async def test_0020_keeps_the_customers_uses_reached_before_it(db_url: str) -> None:
    await upgrade_async(db_url, "0019")  # timestamps are stored as naive UTC
    engine = create_async_engine(db_url)
    try:
        async with engine.begin() as connection:
            for key, customer in (("k1", "wmA"), ("k2", "wmA"), ("k3", ""), ("k4", "wmB")):
                await connection.execute(text(
                    "INSERT INTO material_uses (tenant, key, material_id, guide, channel, "
                    "customer, day, token, at) VALUES ('acme', :key, 'm1', 'lina', 'send', "
                    ":customer, '2026-12-03', '', :at)"),
                    {"key": key, "customer": customer, "at": datetime(2026, 12, 3)})
        await upgrade_async(db_url)
        async with engine.connect() as connection:
            rows = (await connection.execute(text(
                "SELECT use_key, customer, material_id FROM material_use_customers "
                "WHERE tenant = 'acme' ORDER BY use_key"))).all()
    finally:
        await engine.dispose()
    assert [tuple(r) for r in rows] == [("k1", "wmA", "m1"), ("k2", "wmA", "m1"),
                                        ("k4", "wmB", "m1")]
