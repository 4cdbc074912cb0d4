"""Whether a database has every migration: what `serve --no-migrate` and `check` rely on."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import create_async_engine

from guidebot.db.migrate import current_revisions, is_up_to_date, upgrade_async


async def _current(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await current_revisions(connection)
    finally:
        await engine.dispose()


async def test_up_to_date_after_upgrade_even_where_a_head_is_only_a_dependency(
        tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    assert not is_up_to_date(await _current(url))  # never migrated
    await upgrade_async(url, "0007")
    assert not is_up_to_date(await _current(url))  # older than this code
    await upgrade_async(url)
    assert is_up_to_date(await _current(url))
