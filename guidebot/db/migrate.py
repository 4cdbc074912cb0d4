"""Alembic, driven from code: `guidebot db upgrade` and the test fixtures call upgrade()."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
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


def known_revisions() -> set[str]:
    """Every migration this code ships (a database at another revision is newer)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return {revision.revision for revision in script.walk_revisions()}


def is_up_to_date(current: set[str]) -> bool:
    """Whether a database at `current` has every migration this code ships. Not a set
    comparison: alembic leaves out of its version table a head another head depends on
    (`depends_on`), so the applied ones are everything `current` reaches."""
    from alembic.script import ScriptDirectory

    revisions = ScriptDirectory.from_config(alembic_config("sqlite://")).revision_map
    applied: set[str] = set()
    todo = list(current)
    while todo:
        revision = revisions.get_revision(todo.pop())
        if revision is None or revision.revision in applied:
            continue
        applied.add(revision.revision)
        todo.extend(_as_tuple(revision.down_revision))
        todo.extend(_as_tuple(revision.dependencies))
    return head_revisions() <= applied


def _as_tuple(value: str | Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


async def current_revisions(connection: AsyncConnection) -> set[str]:
    """The migrations a database is at (empty: never migrated)."""
    from alembic.runtime.migration import MigrationContext

    def read(sync: Connection) -> set[str]:
        return set(MigrationContext.configure(sync).get_current_heads())

    return await connection.run_sync(read)


async def upgrade_async(url: str, revision: str = "heads") -> None:
    """Run the (internally async) migration in a worker thread with its own event loop."""
    await asyncio.to_thread(upgrade, url, revision)


class SchemaNotReady(Exception):
    """`serve --no-migrate` found the database behind this code's migrations."""


async def wait_for_schema(url: str, *, timeout_s: float, poll_s: float = 0.5) -> None:
    """Wait until the database is at this code's heads (another process is migrating it),
    at most `timeout_s`; SchemaNotReady with what to do otherwise."""
    from sqlalchemy.ext.asyncio import create_async_engine

    check_sqlite_folder(url)
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)  # each poll: INFO
    engine = create_async_engine(url)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    try:
        while True:
            async with engine.connect() as connection:
                current = await current_revisions(connection)
            if is_up_to_date(current):
                return
            if loop.time() >= deadline:
                state = "never migrated" if not current else "older than this code"
                raise SchemaNotReady(
                    f"the database schema is {state} and --no-migrate was given: run "
                    f"`guidebot db upgrade` (or start one process without --no-migrate)")
            await asyncio.sleep(poll_s)
    finally:
        await engine.dispose()
