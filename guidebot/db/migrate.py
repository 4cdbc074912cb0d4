"""Alembic, driven from code: `guidebot db upgrade` and the test fixtures call upgrade()."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from guidebot.db.problems import check_sqlite_folder

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "heads") -> None:
    check_sqlite_folder(url)
    command.upgrade(alembic_config(url), revision)


def head_revisions() -> set[str]:
    """The newest migrations this code ships."""
    from alembic.script import ScriptDirectory

    return set(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


async def current_revisions(connection: AsyncConnection) -> set[str]:
    """The migrations a database is at (empty: never migrated)."""
    from alembic.runtime.migration import MigrationContext

    def read(sync: Connection) -> set[str]:
        return set(MigrationContext.configure(sync).get_current_heads())

    return await connection.run_sync(read)


async def upgrade_async(url: str, revision: str = "heads") -> None:
    """Run the (internally async) migration in a worker thread with its own event loop."""
    await asyncio.to_thread(upgrade, url, revision)
