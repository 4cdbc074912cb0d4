"""Backups of the embedded SQLite database: `guidebot db backup` and `guidebot db restore`.

PostgreSQL has its own tools: `pg_dump_command` names the one to use instead.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shlex
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from guidebot.db.migrate import head_revisions, is_up_to_date, known_revisions
from guidebot.db.problems import masked_url
from guidebot.errors import ValidationFailed

LOCK_WAIT_S = 2.0  # restore: how long to wait for the database before saying it is in use


class BackupRefused(ValidationFailed):
    """The backup or restore was not done; the message says why and what to do."""


@dataclass(frozen=True)
class BackupDone:
    path: Path
    size: int
    seconds: float
    revisions: frozenset[str]


@dataclass(frozen=True)
class RestoreDone:
    database: Path
    kept: Path | None  # the file it replaced (None: there was none)
    revisions: frozenset[str]
    up_to_date: bool


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for PostgreSQL (or an in-memory SQLite)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    if not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def pg_dump_command(url: str) -> str:
    """The pg_dump command line for a PostgreSQL URL, the password left out (pg_dump reads
    it from PGPASSWORD or ~/.pgpass)."""
    return shlex.join(["pg_dump", "--format=custom", *_pg_target(url), "--file=guidebot.dump"])


def pg_restore_command(url: str) -> str:
    """The pg_restore command line that puts a pg_dump_command file back, password left out."""
    return shlex.join(["pg_restore", "--clean", "--if-exists", "--no-owner", *_pg_target(url),
                       "guidebot.dump"])


def postgres_advice(url: str, action: str) -> str:
    """Why `action` ("backup", "restore", or "schedule": [server.backup]) is refused on
    PostgreSQL, and the pg_dump (pg_restore) command to use instead; no password."""
    if action == "restore":
        return (f"guidebot db restore restores the embedded SQLite database only; this one is "
                f"PostgreSQL ({masked_url(url)}): restore a pg_dump file with pg_restore, e.g. "
                f"`{pg_restore_command(url)}` (with guidebot stopped)")
    what, then = {"backup": ("guidebot db backup copies", ""),
                  "schedule": ("scheduled backups ([server.backup]) copy",
                               "; remove [server.backup] and run it from cron or a systemd "
                               "timer")}[action]
    return (f"{what} the embedded SQLite database only; this one is PostgreSQL "
            f"({masked_url(url)}): back it up with pg_dump, e.g. `{pg_dump_command(url)}` "
            f"(the password from PGPASSWORD or ~/.pgpass){then}")


def _pg_target(url: str) -> list[str]:
    parsed = make_url(url)
    args = [f"--host={parsed.host}"] if parsed.host else []
    args += [f"--port={parsed.port}"] if parsed.port else []
    args += [f"--username={parsed.username}"] if parsed.username else []
    return [*args, f"--dbname={parsed.database or ''}"]


def backup(database: Path, target: Path, *, force: bool = False) -> BackupDone:
    """A consistent copy of `database` at `target`, made while other processes write to it.

    The copy is made with VACUUM INTO, not the online backup API. Measured with
    scripts/bench_backup.py (a writer process committing a row about every millisecond,
    2026-12-07): the backup API in steps with sleeps between them never finishes while
    another process writes, since SQLite restarts a stepped backup whenever another
    connection changes the source (given up after 30 s, on 69 MB and on 288 MB). In one
    step, the backup API and VACUUM INTO both read one snapshot in one read transaction,
    which in WAL mode never blocks a writer: on 69 MB 0.20 s against 0.38 s, the writer's
    p99 commit 1.7 ms against 0.2 ms; on 288 MB 1.84 s against 2.57 s, p99 0.4 ms for both
    (slowest commits 14-78 ms either way: disk contention, not a lock). Neither holds the
    writer; VACUUM INTO is kept for its compact copy (no free pages) made by one statement.
    The copy goes to a temporary file beside `target` and takes its name only once
    `PRAGMA integrity_check` passed on it and its migrations equal the source's; the folder
    is synced then, where the OS allows.
    """
    database, target = database.resolve(), target.absolute()
    if not database.is_file():
        raise BackupRefused(f"the database {database} does not exist")
    if _same_file(database, target):
        raise BackupRefused(f"{target} is the live database: choose another path")
    if target.exists() and not force:
        raise BackupRefused(f"{target} exists: choose another path, or pass --force to "
                            "replace it")
    if not target.parent.is_dir():
        raise BackupRefused(f"the folder {target.parent} does not exist")
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    partial.unlink(missing_ok=True)
    started = time.monotonic()
    try:
        with _open(database) as source:
            source.execute("VACUUM INTO ?", (str(partial),))
            wanted = _revisions(source)
        with _open(partial) as copy:
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            _check_integrity(copy, partial)
            got = _revisions(copy)
        if got != wanted:
            raise BackupRefused(f"the copy's schema version {schema_version(got)} differs "
                                f"from the database's {schema_version(wanted)}: try again")
        _fsync(partial)
        if force:
            os.replace(partial, target)
        else:
            _take_name(partial, target)
        fsync_folder(target.parent)  # the new name survives a power cut too
    finally:
        partial.unlink(missing_ok=True)
    return BackupDone(target, target.stat().st_size, time.monotonic() - started,
                      frozenset(wanted))


def _take_name(partial: Path, target: Path) -> None:
    """Give the checked copy the name `target`, never replacing a file that appeared there
    meanwhile. A hard link does it in one step; where the filesystem has none (SMB/CIFS,
    vfat, some NAS mounts refuse link with EPERM or ENOTSUP) the name is reserved by
    creating it exclusively, then the copy is renamed onto the empty file just made."""
    taken = BackupRefused(f"{target} exists: choose another path, or pass --force to "
                          "replace it")
    try:
        os.link(partial, target)
    except FileExistsError:
        raise taken from None
    except OSError:  # no hard links on this filesystem
        try:
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            raise taken from None
        try:
            os.replace(partial, target)
        except BaseException:
            target.unlink()  # the empty file reserved above, not a copy
            raise
    else:
        partial.unlink()


def restore(database: Path, source: Path, *, now: datetime | None = None) -> RestoreDone:
    """Put the backup `source` in place of `database`, keeping the current file as
    `<database>.before-restore-<UTC timestamp>`. Refused while another process has the
    database open (a running `guidebot serve`), for a damaged backup, and for one made by
    a newer guidebot (a schema this code's migrations do not know)."""
    database, source = database.absolute(), source.absolute()
    if not source.is_file():
        raise BackupRefused(f"the backup {source} does not exist")
    if database.exists() and _same_file(database, source):
        raise BackupRefused(f"{source} is the live database")
    try:
        with _open(source, read_only=True) as backup_db:
            _check_integrity(backup_db, source)
            revisions = _revisions(backup_db)
    except sqlite3.DatabaseError as exc:
        raise BackupRefused(f"{source} is not a usable SQLite database ({exc})") from None
    unknown = revisions - known_revisions()
    if unknown or not revisions:
        why = ("has no schema version (not a guidebot database)" if not revisions else
               f"is at schema version {schema_version(revisions)}, newer than this guidebot's "
               f"{schema_version(head_revisions())}")
        raise BackupRefused(f"the backup {why}: restore it with the guidebot that made it")
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    kept = database.with_name(f"{database.name}.before-restore-{stamp}")
    if kept.exists():
        raise BackupRefused(f"{kept} exists: wait a second and try again")
    incoming = database.with_name(f".{database.name}.restoring-{os.getpid()}")
    had_one = database.exists()
    try:
        _copy(source, incoming)  # the backup as SQLite reads it (with its WAL, if any)
        if had_one:
            with _quiesced(database):  # held until the new file has the name
                os.replace(database, kept)
                for suffix in ("-wal", "-shm"):  # left by a crash: they belong to the old file
                    side = database.with_name(database.name + suffix)
                    if side.exists():
                        os.replace(side, kept.with_name(kept.name + suffix))
                os.replace(incoming, database)
        else:
            os.replace(incoming, database)
        fsync_folder(database.parent)
    finally:
        incoming.unlink(missing_ok=True)
    return RestoreDone(database, kept if had_one else None, frozenset(revisions),
                       is_up_to_date(revisions))


@contextlib.contextmanager
def _quiesced(database: Path) -> Iterator[None]:
    """Hold the database for ourselves while the files are renamed: refused while another
    connection has it open. In WAL mode a plain `BEGIN EXCLUSIVE` does not see an idle
    reader (a serving process between requests), but exclusive locking mode needs every
    other connection gone. Leaving WAL writes the WAL back into the file (so the file alone
    is the database) and deletes it; the in-memory journal then leaves no file by the
    database's name that closing the connection would touch once the name is the restored
    file's. The lock stays on the old file through its rename (POSIX renames a file held
    open and locked), so no connection reads or writes it until the restored file has the
    name: one opened from then on gets the restored file. (One that opened the name before
    the renames has the kept file once the lock goes: restore with guidebot stopped.)"""
    conn = sqlite3.connect(database, timeout=LOCK_WAIT_S, isolation_level=None)
    try:
        try:
            conn.execute("PRAGMA locking_mode=EXCLUSIVE")
            conn.execute("BEGIN EXCLUSIVE")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            conn.execute("COMMIT")  # the lock outlives it, in exclusive locking mode
            conn.execute("PRAGMA journal_mode=MEMORY")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            raise BackupRefused(f"the database {database} is in use (is `guidebot serve` "
                                "running?): stop every process using it, then restore"
                                ) from None
        yield
    finally:
        conn.close()


@contextlib.contextmanager
def _open(path: Path, *, read_only: bool = False) -> Iterator[sqlite3.Connection]:
    """An existing database (never creates one), in autocommit mode; read-only: never
    written (a backup on a read-only mount, or one whose WAL must not be checkpointed)."""
    mode = "ro" if read_only else "rw"
    conn = sqlite3.connect(f"{path.as_uri()}?mode={mode}", uri=True, isolation_level=None,
                           timeout=10)
    try:
        yield conn
    finally:
        conn.close()


def _check_integrity(conn: sqlite3.Connection, path: Path) -> None:
    problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    if problems != ["ok"]:
        raise BackupRefused(f"{path} failed the integrity check: {problems[0]}")


def _revisions(conn: sqlite3.Connection) -> set[str]:
    """The alembic revisions the database is at (empty: none, or not a guidebot database)."""
    try:
        return {row[0] for row in conn.execute("SELECT version_num FROM alembic_version")}
    except sqlite3.OperationalError:
        return set()


def schema_version(revisions: set[str] | frozenset[str]) -> str:
    """The newest of a database's migrations (revisions are numbered: 0001, 0002, …);
    alembic's table holds several, one per branch it merged."""
    return max(revisions, default="(none)")


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    with contextlib.suppress(OSError):
        return os.path.samefile(a, b)
    return False


def _copy(source: Path, target: Path) -> None:
    target.unlink(missing_ok=True)  # left by a restore that was killed
    with _open(source, read_only=True) as reading:
        writing = sqlite3.connect(target, isolation_level=None)
        try:
            reading.backup(writing)
        finally:
            writing.close()
    _fsync(target)


def fsync_folder(folder: Path) -> None:
    """Write a folder's entries (a file's new name) to disk, where the OS allows: skipped
    quietly where the folder cannot be opened as a directory (Windows) or refuses fsync
    (some network filesystems)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
