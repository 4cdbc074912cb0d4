"""Shared fixtures: databases (SQLite and, when configured, PostgreSQL), config, the stack."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tests.support.stack import reset_postgres

ROOT = Path(__file__).resolve().parents[1]
PG_ENV = "GUIDEBOT_TEST_DATABASE_URL"


def pytest_sessionstart(session: pytest.Session) -> None:
    url = os.environ.get(PG_ENV)
    if not url:
        return
    try:
        asyncio.run(reset_postgres(url))
    except Exception as exc:  # noqa: BLE001 - any failure means the run cannot be trusted
        pytest.exit(f"{PG_ENV} is set but PostgreSQL is unreachable: {exc!r}", returncode=3)


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'guidebot.db'}"
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"PostgreSQL variant: set {PG_ENV} to run it (CI does)")
    await reset_postgres(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'guidebot.db'}"


@pytest.fixture
async def stack(aiohttp_server, tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    from tests.support.stack import start_stack

    s = await start_stack(aiohttp_server, tmp_path, db_url)
    yield s
    await s.http.close()


@pytest.fixture
async def flash_stack(aiohttp_server, tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    """The stack with the shipped library plus the manual test SOP tests/data/sop/flash.toml."""
    from tests.support.stack import ROOT, library_copy, start_stack

    library = library_copy(tmp_path, {"sops/flash.toml": ROOT / "tests/data/sop/flash.toml"})
    s = await start_stack(aiohttp_server, tmp_path, db_url, library=library)
    yield s
    await s.http.close()
