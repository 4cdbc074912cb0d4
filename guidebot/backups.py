"""Scheduled backups of the SQLite database by `guidebot serve` ([server.backup]).

Once a day at `at` (UTC) the serving process writes `guidebot-YYYYMMDD-HHMMSS.db` (its UTC
time) into `dir` with the code of `guidebot db backup` (guidebot/db/backup.py: a consistent
snapshot, integrity and schema checked before the copy takes its name), in a worker thread
so the loop keeps acknowledging callbacks; then the copies beyond the newest `keep` are
deleted. Only files named like a copy are ever deleted; other files in `dir` are left alone.

The copies themselves are the record of what was done: a copy has its name only once it
passed its checks, so a copy made at or after the day's `at` means that day is done. That
holds across restarts with no state of its own (a row in the database would be rolled back
by a restore and copied into the next backup), and a new `dir` starts with a copy at once.
A day whose copy is missing (the process was down at `at`, or `dir` is new) is made up at
the next check. A copy named after the time now (made while the clock was ahead) does not
count: it would otherwise stop the copies until then; it is neither counted towards `keep`
nor deleted until its time has come (a warning names it at each copy). A temporary
`.guidebot-….db.partial-<pid>` left by a copy that was interrupted (the process killed, the
machine stopped) is deleted by the next copy once it has not changed for 6 hours.
A failed backup is logged with an error id, counted in guidebot_backups_total{result=
"failed"} and tried again an hour later; that hour is kept in memory only, so a restart
tries again at once.

SQLite deployments run one `guidebot serve` process (PostgreSQL is the database for several,
and [server.backup] is refused there: pg_dump is the tool), so no lock is taken.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from guidebot.db import backup

if TYPE_CHECKING:
    from guidebot.metrics import Metrics
    from guidebot.settings import BackupSettings, Settings

log = logging.getLogger(__name__)

CHECK_EVERY_S = 60  # how often the serving process looks whether a copy is due
RETRY_AFTER = timedelta(hours=1)  # a failed backup is tried again this much later
STAMP = "%Y%m%d-%H%M%S"
COPY_NAME = re.compile(r"guidebot-(\d{8}-\d{6})\.db")
# the temporary file a copy is written to before it takes its name (guidebot/db/backup.py)
# a partial changed within this long may still be another process's copy under its
# integrity check (`guidebot db backup` into this folder: minutes on a large database)
PARTIAL_STALE = timedelta(hours=6)
PARTIAL_NAME = re.compile(r"\.guidebot-\d{8}-\d{6}\.db\.partial-\d+")


@dataclass(frozen=True)
class Outcome:
    made: backup.BackupDone | None  # None: a copy since the last `at` was there already
    newest: datetime | None  # the newest copy in dir after the run
    deleted: tuple[Path, ...] = ()


def copy_name(at: datetime) -> str:
    return f"guidebot-{at.astimezone(UTC).strftime(STAMP)}.db"


def last_due(now: datetime, at: time) -> datetime:
    """The latest moment a copy was due: today's `at` once it has come, else yesterday's."""
    today = now.astimezone(UTC).replace(hour=at.hour, minute=at.minute, second=0,
                                        microsecond=0)
    return today if now >= today else today - timedelta(days=1)


def copies(folder: Path) -> list[tuple[datetime, Path]]:
    """The scheduled copies in `folder`, oldest first (other files are not copies)."""
    found = []
    for path in folder.iterdir():
        named = COPY_NAME.fullmatch(path.name)
        if named is None or not path.is_file():
            continue
        try:
            made = datetime.strptime(named[1], STAMP).replace(tzinfo=UTC)
        except ValueError:  # e.g. a 13th month: not a name this code wrote
            continue
        found.append((made, path))
    return sorted(found)


class ScheduledBackups:
    """The daily copy of the SQLite database into [server.backup] `dir` (nothing when
    [server.backup] is not configured)."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        # a PostgreSQL [server.backup] is refused when the config is loaded
        database = backup.sqlite_file(settings.database_url)
        self._job = (settings.server.backup, database) if (
            settings.server.backup is not None and database is not None) else None
        self._metrics = metrics
        self._failed_at: datetime | None = None

    @property
    def configured(self) -> bool:
        return self._job is not None

    async def run_if_due(self, now: datetime | None = None) -> Outcome | None:
        """Make the copy if one is due; None: not configured, waiting out the hour after a
        failure, or failed now (logged and counted)."""
        if self._job is None:
            return None
        config, database = self._job
        now = now or datetime.now(UTC)
        if self._failed_at is not None and now - self._failed_at < RETRY_AFTER:
            return None
        try:
            outcome = await asyncio.to_thread(_run, config, database, now)
        except Exception as exc:  # noqa: BLE001 - logged with an id, counted, tried again
            self._failed_at = now
            self._metrics.backups.labels(result="failed").inc()
            expected = isinstance(exc, OSError | backup.BackupRefused)
            log.error("scheduled backup into %s failed error_id=%s: %s: %s; tried again in "
                      "an hour", config.dir, secrets.token_hex(6), type(exc).__name__,
                      exc, exc_info=not expected)
            return None
        self._failed_at = None
        if outcome.newest is not None:
            self._metrics.last_backup.set(outcome.newest.timestamp())
        if outcome.made is not None:
            self._metrics.backups.labels(result="done").inc()
            made = outcome.made
            log.info("scheduled backup written to %s: %.1f MB in %.2f s, schema version %s; "
                     "%s older copies deleted", made.path, made.size / 1e6, made.seconds,
                     backup.schema_version(made.revisions), len(outcome.deleted))
        return outcome


def _run(config: BackupSettings, database: Path, now: datetime) -> Outcome:
    """In a worker thread: the copy if one is due, then the copies beyond `keep` deleted.
    Copies named after `now` (written while the clock was ahead) neither make a day done
    nor count towards `keep`, and are not deleted: they join the others once `now` has
    passed their names' time."""
    folder = config.dir
    folder.mkdir(parents=True, exist_ok=True)
    present, ahead = _split(copies(folder), now)
    if present and present[-1][0] >= last_due(now, config.at):
        return Outcome(None, present[-1][0])
    for path in ahead:
        log.warning("backup %s is named after the time now (%s): the clock was ahead when "
                    "it was made; not counted as a scheduled copy until then", path,
                    now.astimezone(UTC).strftime(STAMP))
    _delete_stale_partials(folder, now)
    done = backup.backup(database, folder / copy_name(now))
    present, _ = _split(copies(folder), now)
    deleted = []
    for _, path in present[:-config.keep]:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:  # the copy is made; the next one tries again
            log.warning("old backup %s not deleted error_id=%s: %s", path,
                        secrets.token_hex(6), exc)
        else:
            deleted.append(path)
    return Outcome(done, present[-1][0], tuple(deleted))


def _split(found: list[tuple[datetime, Path]], now: datetime
           ) -> tuple[list[tuple[datetime, Path]], list[Path]]:
    """The copies named at or before `now` (oldest first), and those named after it."""
    return [c for c in found if c[0] <= now], [p for made, p in found if made > now]


def _delete_stale_partials(folder: Path, now: datetime) -> None:
    """The temporary files of copies that never took their name (the process was killed
    or the machine stopped during a copy), unchanged for PARTIAL_STALE: deleted. One
    changed since (still written, or checked by a `guidebot db backup` run) is left."""
    for path in folder.iterdir():
        if PARTIAL_NAME.fullmatch(path.name) is None:
            continue
        try:
            if not path.is_file() or path.stat().st_mtime >= (now - PARTIAL_STALE).timestamp():
                continue
            path.unlink()
        except OSError as exc:  # the copy goes on; the next run tries again
            log.warning("stale partial backup %s not deleted error_id=%s: %s", path,
                        secrets.token_hex(6), exc)
        else:
            log.info("stale partial backup %s deleted (left by an interrupted copy)", path)
