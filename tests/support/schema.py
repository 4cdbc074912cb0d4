"""A migrated database for a test, fast: a new SQLite file is a copy of one database migrated
once (a template kept in the temp folder, named by a hash of the migrations and the column
types they use, so any change to them makes a new one); PostgreSQL and existing files are
migrated as usual. The migrations themselves are tested from an empty database elsewhere
(test_schema_state, the migration tests)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

from sqlalchemy.engine import make_url

import guidebot.db
from guidebot.db.migrate import upgrade

_DB = Path(guidebot.db.__file__).resolve().parent
_SOURCES = (_DB / "migrations", _DB / "types.py", _DB / "engine.py", _DB / "migrate.py")


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for source in _SOURCES:
        files = sorted(source.rglob("*.py")) if source.is_dir() else [source]
        for path in files:
            digest.update(str(path.relative_to(_DB)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if not parsed.get_backend_name().startswith("sqlite") or not parsed.database:
        return None
    return None if parsed.database == ":memory:" else Path(parsed.database)


def _template() -> Path:
    folder = Path(tempfile.gettempdir()) / "guidebot-test-schema"
    folder.mkdir(exist_ok=True)
    template = folder / f"{_fingerprint()}.db"
    if not template.exists():
        building = folder / f"{template.stem}.{os.getpid()}.building"
        for leftover in (building, *building.parent.glob(f"{building.name}-*")):
            leftover.unlink(missing_ok=True)
        upgrade(f"sqlite+aiosqlite:///{building}")
        conn = sqlite3.connect(building)  # everything in the main file (the WAL emptied)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        os.replace(building, template)  # atomic: a concurrent builder's copy is as good
    return template


def migrate(url: str) -> None:
    """The database at `url` migrated to the newest schema."""
    path = _sqlite_file(url)
    if path is None or path.exists():
        upgrade(url)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_template(), path)


async def migrate_async(url: str) -> None:
    await asyncio.to_thread(migrate, url)
