"""A database failure as one readable line: where the URL comes from, password masked."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

DRIVERS = ("sqlalchemy", "alembic", "asyncpg", "aiosqlite", "sqlite3")


class DatabaseUnavailable(Exception):
    """Found before connecting: e.g. the folder of a SQLite file does not exist."""


def check_sqlite_folder(url: str) -> None:
    """A SQLite file's folder must exist (the driver's own failure leaves a thread crashing
    after the caller's loop has closed)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return
    if parsed.database == ":memory:" or parsed.database.startswith("file:"):
        return
    folder = Path(parsed.database).parent
    if not folder.is_dir():
        raise DatabaseUnavailable(f"the folder {folder} of the SQLite file does not exist")


def masked_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "(unparsable URL)"


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _frames(tb: TracebackType | None) -> list[str]:
    names = []
    while tb is not None:
        names.append(str(tb.tb_frame.f_globals.get("__name__", "")))
        tb = tb.tb_next
    return names


def is_database_error(exc: BaseException) -> bool:
    """Raised by SQLAlchemy, or from inside a database driver or Alembic."""
    for link in _chain(exc):
        if isinstance(link, SQLAlchemyError | DatabaseUnavailable):
            return True
        if any(name.split(".")[0] in DRIVERS for name in _frames(link.__traceback__)):
            return True
    return False


def describe(exc: BaseException, url: str, source: str) -> str:
    """`database error (GUIDEBOT_DATABASE_URL: postgresql+asyncpg://u:***@h/db): reason`."""
    root = _chain(exc)[-1]
    orig = getattr(exc, "orig", None)
    cause = orig if isinstance(orig, BaseException) else root
    reason = (str(cause).strip().splitlines() or [""])[0]
    password = _password(url)
    if password:
        reason = reason.replace(password, "***")
    reason = f"{type(cause).__name__}: {reason}" if reason else type(cause).__name__
    return f"database error ({source}: {masked_url(url)}): {reason}"


def _password(url: str) -> str:
    try:
        return make_url(url).password or ""
    except (ArgumentError, ValueError):
        return ""
