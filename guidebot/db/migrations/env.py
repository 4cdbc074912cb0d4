"""Alembic environment: runs migrations over the async engine of the configured URL."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

from guidebot.db import load_models

load_models()  # registers every table on SQLModel.metadata
target_metadata = SQLModel.metadata


# Several `guidebot serve` processes started together on one PostgreSQL each migrate at
# start: a transaction-scoped advisory lock makes them take turns, and the later ones find
# the schema at its heads and do nothing (PostgreSQL's DDL is transactional).
MIGRATION_LOCK = 0x6775_6964_6562  # "guideb"


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                               {"key": MIGRATION_LOCK})
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(context.config.get_main_option("sqlalchemy.url") or "")
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


asyncio.run(_run_async())
