"""Migration 0010 on a database that already has guides: they stay, active, not yet read."""

from __future__ import annotations

from sqlalchemy import text

from guidebot.db.engine import Database
from guidebot.db.migrate import upgrade_async


async def test_existing_guides_upgrade_as_active(db_url: str) -> None:
    await upgrade_async(db_url, "0007")
    db = Database(db_url)
    try:
        async with db.write() as s:
            await s.execute(text(
                "INSERT INTO guides (tenant, userid, name, store_id, created_at) "
                "VALUES ('acme', 'lina', '李娜', 'S01', CURRENT_TIMESTAMP)"))
        await upgrade_async(db_url)
        async with db.read() as s:
            row = (await s.execute(text(
                "SELECT name, store_id, active, wecom_status, directory_at FROM guides"))).one()
        assert tuple(row) == ("李娜", "S01", True, None, None)
    finally:
        await db.dispose()
