"""[server.backup]: the daily copy `guidebot serve` makes of its SQLite database, run with an
injected `now` (the scheduler only calls it every minute); what the config refuses."""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from guidebot.backups import ScheduledBackups
from guidebot.check import _backup_dir
from guidebot.db.engine import Database
from guidebot.db.repo import contacts
from guidebot.errors import ConfigError
from guidebot.metrics import Metrics
from guidebot.settings import load_settings
from tests.support.stack import Stack, start_stack, write_config
from tests.support.wecom import add_contact_xml

CORP = "wwacme5823bf96d3bd"
DAY1 = datetime(2026, 3, 10, 4, 0, tzinfo=UTC)  # an hour after `at`


def _section(folder: Path, *, keep: int | None = None, at: str = "03:00") -> str:
    keep_line = f"keep = {keep}\n" if keep is not None else ""
    return f'\n[server.backup]\ndir = "{folder}"\nat = "{at}"\n{keep_line}'


async def _stack(aiohttp_server: Any, tmp_path: Path, sqlite_url: str,  # type: ignore[misc]
                 **section: Any) -> tuple[Stack, ScheduledBackups]:
    stack = await start_stack(aiohttp_server, tmp_path, sqlite_url,
                              config_extra=_section(tmp_path / "backups", **section))
    backups = stack.runtime.services.backups
    assert backups.configured
    return stack, backups


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _sample(stack: Stack, name: str, **labels: str) -> float | None:
    value = stack.runtime.services.metrics.registry.get_sample_value(name, labels)
    return None if value is None else float(value)


def _revisions(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT version_num FROM alembic_version")}


async def test_one_checked_copy_a_day_across_restarts(
        aiohttp_server, tmp_path: Path, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    stack, backups = await _stack(aiohttp_server, tmp_path, sqlite_url)
    folder = tmp_path / "backups"
    assert not folder.exists()  # created by the first run
    xml = add_contact_xml(corp_id=CORP, guide="lina", external_userid="wmsaved")
    assert await stack.post_callback(xml) == 200
    await stack.runtime.drain()

    first = await backups.run_if_due(now=DAY1)  # started after `at`: at once
    assert first is not None and first.made is not None
    copy = folder / "guidebot-20260310-040000.db"
    assert _names(folder) == [copy.name] and first.made.path == copy
    with sqlite3.connect(copy) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert _revisions(copy) == _revisions(tmp_path / "guidebot.db")
    saved = Database(f"sqlite+aiosqlite:///{copy}")
    try:
        async with saved.read() as s:
            customer = await contacts.get_customer(s, tenant="acme", external_userid="wmsaved")
    finally:
        await saved.dispose()
    assert customer is not None

    for later in (DAY1.replace(hour=23, minute=59), DAY1 + timedelta(hours=22, minutes=59)):
        again = await backups.run_if_due(now=later)  # same day; next day before `at`
        assert again is not None and again.made is None
    assert _names(folder) == [copy.name]

    restarted = ScheduledBackups(stack.settings, Metrics())  # a new process, same day
    outcome = await restarted.run_if_due(now=DAY1 + timedelta(hours=5))
    assert outcome is not None and outcome.made is None
    assert _names(folder) == [copy.name]

    day2 = DAY1 + timedelta(hours=23)  # the next day's 03:00
    second = await backups.run_if_due(now=day2)
    assert second is not None and second.made is not None
    assert _names(folder) == [copy.name, "guidebot-20260311-030000.db"]
    assert _sample(stack, "guidebot_backups_total", result="done") == 2
    assert _sample(stack, "guidebot_backups_total", result="failed") is None
    assert _sample(stack, "guidebot_backup_last_success_timestamp_seconds") == day2.timestamp()
    await stack.http.close()


async def test_keep_deletes_the_oldest_copies_and_nothing_else(
        aiohttp_server, tmp_path: Path, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    stack, backups = await _stack(aiohttp_server, tmp_path, sqlite_url, keep=2)
    folder = tmp_path / "backups"
    folder.mkdir()
    others = ["notes.txt", "guidebot-before-upgrade.db", "guidebot-20260101-000000.db.bak"]
    for name in others:
        (folder / name).write_text("the operator's")
    made = []
    for day in range(3):
        outcome = await backups.run_if_due(now=DAY1 + timedelta(days=day))
        assert outcome is not None and outcome.made is not None
        made.append(outcome.made.path.name)
    assert made == ["guidebot-20260310-040000.db", "guidebot-20260311-040000.db",
                    "guidebot-20260312-040000.db"]
    assert _names(folder) == sorted([*others, *made[1:]])
    assert all((folder / name).read_text() == "the operator's" for name in others)
    await stack.http.close()


async def test_a_failed_backup_is_logged_counted_and_tried_again_an_hour_later(
        aiohttp_server, tmp_path: Path, sqlite_url: str,  # type: ignore[no-untyped-def]
        caplog: pytest.LogCaptureFixture) -> None:
    stack, backups = await _stack(aiohttp_server, tmp_path, sqlite_url)
    folder = tmp_path / "backups"
    folder.write_text("not a folder any more")  # e.g. a mount that went away
    with caplog.at_level(logging.INFO, logger="guidebot"):
        assert await backups.run_if_due(now=DAY1) is None
    failures = [r.getMessage() for r in caplog.records if r.name == "guidebot.backups"]
    assert len(failures) == 1 and "failed error_id=" in failures[0], failures
    assert str(folder) in failures[0] and "FileExistsError" in failures[0]
    assert "acme-secret-for-tests" not in failures[0] and "acme-admin" not in failures[0]
    assert _sample(stack, "guidebot_backups_total", result="failed") == 1

    assert await backups.run_if_due(now=DAY1 + timedelta(minutes=59)) is None  # not yet
    assert _sample(stack, "guidebot_backups_total", result="failed") == 1

    folder.unlink()
    retried = await backups.run_if_due(now=DAY1 + timedelta(hours=1))
    assert retried is not None and retried.made is not None
    assert _names(folder) == ["guidebot-20260310-050000.db"]
    assert _sample(stack, "guidebot_backups_total", result="done") == 1
    await stack.http.close()


async def test_daily_copies_on_a_filesystem_without_hard_links(
        aiohttp_server, tmp_path: Path, sqlite_url: str,  # type: ignore[no-untyped-def]
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`dir` on an SMB/CIFS, vfat or NAS mount refuses link(2): the copies are made anyway."""
    def refused(*_: object, **__: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")
    monkeypatch.setattr(os, "link", refused)
    stack, backups = await _stack(aiohttp_server, tmp_path, sqlite_url)
    folder = tmp_path / "backups"
    for day in range(2):
        outcome = await backups.run_if_due(now=DAY1 + timedelta(days=day))
        assert outcome is not None and outcome.made is not None
    assert _names(folder) == ["guidebot-20260310-040000.db", "guidebot-20260311-040000.db"]
    for name in _names(folder):
        with sqlite3.connect(folder / name) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert _sample(stack, "guidebot_backups_total", result="done") == 2
    assert _sample(stack, "guidebot_backups_total", result="failed") is None
    await stack.http.close()


def _load(tmp_path: Path, url: str, section: str) -> Any:
    (tmp_path / "backups").mkdir(exist_ok=True)
    return load_settings(write_config(tmp_path, url, extra=section))


@pytest.mark.parametrize(("section", "key", "problem"), [
    (dict(keep=0), "server.backup.keep", "must be from 1 to 365 (daily copies), got 0"),
    (dict(at="3am"), "server.backup.at", 'must be a time of day "HH:MM"'),
    (dict(at="24:00"), "server.backup.at", "UTC"),
])
def test_the_config_refuses_a_bad_keep_or_time(tmp_path: Path, sqlite_url: str,
                                               section: dict[str, Any], key: str,
                                               problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, sqlite_url, _section(tmp_path / "backups", **section))
    assert info.value.key == key and problem in info.value.problem


def test_the_config_refuses_the_database_file_as_dir(tmp_path: Path, sqlite_url: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, sqlite_url, _section(tmp_path / "guidebot.db"))
    assert info.value.key == "server.backup.dir"
    assert "is the database file itself" in info.value.problem


def test_postgresql_refuses_server_backup_with_the_pg_dump_command(
        tmp_path: Path, db_url: str) -> None:
    """The SQLite variant: the same section is accepted."""
    section = _section(tmp_path / "backups")
    if db_url.startswith("sqlite"):
        settings = _load(tmp_path, db_url, section)
        assert settings.server.backup.dir == tmp_path / "backups"
        assert settings.server.backup.keep == 7
        return
    url = make_url(db_url).set(password="s3cret-pw").render_as_string(hide_password=False)
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, url, section)
    assert info.value.key == "server.backup"
    problem = info.value.problem
    assert "SQLite database only; this one is PostgreSQL" in problem
    assert "pg_dump --format=custom" in problem and "remove [server.backup]" in problem
    assert "s3cret-pw" not in str(info.value)



async def test_a_copy_named_in_the_future_neither_stops_the_copies_nor_counts_until_then(
        aiohttp_server, tmp_path: Path, sqlite_url: str,  # type: ignore[no-untyped-def]
        caplog: pytest.LogCaptureFixture) -> None:
    """A copy made while the clock was ahead (named 03-11 03:30, found on 03-10): the day's
    copy is made anyway, and the next day's at 03:00; once its time has come it is a copy
    like any other: the day is done, and it rotates out with `keep`."""
    stack, backups = await _stack(aiohttp_server, tmp_path, sqlite_url, keep=2)
    folder = tmp_path / "backups"
    folder.mkdir()
    ahead = folder / "guidebot-20260311-033000.db"
    ahead.write_text("made while the clock was ahead")
    with caplog.at_level(logging.WARNING, logger="guidebot.backups"):
        first = await backups.run_if_due(now=DAY1)
    assert first is not None and first.made is not None and first.newest == DAY1
    assert [r.getMessage() for r in caplog.records if r.name == "guidebot.backups"] == [
        f"backup {ahead} is named after the time now (20260310-040000): the clock was ahead "
        "when it was made; not counted as a scheduled copy until then"]
    assert _sample(stack, "guidebot_backup_last_success_timestamp_seconds") == DAY1.timestamp()
    same_day = await backups.run_if_due(now=DAY1 + timedelta(hours=2))
    assert same_day is not None and same_day.made is None

    day2 = DAY1 + timedelta(hours=23)  # 03-11 03:00: the 03:30 copy is still ahead
    second = await backups.run_if_due(now=day2)
    assert second is not None and second.made is not None and second.deleted == ()
    assert _names(folder) == ["guidebot-20260310-040000.db", "guidebot-20260311-030000.db",
                              ahead.name]
    later = await backups.run_if_due(now=day2 + timedelta(hours=1))  # now it counts
    assert later is not None and later.made is None
    assert later.newest == datetime(2026, 3, 11, 3, 30, tzinfo=UTC)

    third = await backups.run_if_due(now=day2 + timedelta(days=1))
    assert third is not None and third.made is not None
    assert _names(folder) == [ahead.name, "guidebot-20260312-030000.db"]
    await stack.http.close()


async def test_the_next_copy_deletes_partial_files_an_interrupted_copy_left(
        aiohttp_server, tmp_path: Path, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    stack, backups = await _stack(aiohttp_server, tmp_path, sqlite_url)
    folder = tmp_path / "backups"
    folder.mkdir()
    stale = folder / ".guidebot-20260309-030000.db.partial-4242"  # killed mid-copy yesterday
    writing = folder / ".guidebot-20260310-035959.db.partial-4343"  # changed since the run began
    # a `guidebot db backup` into this folder, its copy written 10 minutes ago and under its
    # integrity check since
    checked = folder / ".guidebot-20260310-034900.db.partial-4444"
    others = [folder / ".notes.partial-1", folder / "guidebot-20260309.db.partial-7"]
    for path in (stale, writing, checked, *others):
        path.write_text("partial")
    for path in (stale, *others):
        os.utime(path, (DAY1.timestamp() - 86_400,) * 2)
    os.utime(checked, (DAY1.timestamp() - 600,) * 2)
    os.utime(writing, (DAY1.timestamp() + 60,) * 2)
    outcome = await backups.run_if_due(now=DAY1)
    assert outcome is not None and outcome.made is not None
    assert _names(folder) == sorted([writing.name, checked.name, *(p.name for p in others),
                                     "guidebot-20260310-040000.db"])
    await stack.http.close()


async def test_the_folder_is_synced_once_the_copy_has_its_name_where_it_can_be(
        aiohttp_server, tmp_path: Path, sqlite_url: str,  # type: ignore[no-untyped-def]
        monkeypatch: pytest.MonkeyPatch) -> None:
    """fsync(2) on the folder after the copy took its name; where a folder cannot be opened
    (Windows), the copy is made all the same."""
    stack, backups = await _stack(aiohttp_server, tmp_path, sqlite_url)
    folder = tmp_path / "backups"
    folder.mkdir()
    synced: list[tuple[int, list[str]]] = []
    real_fsync, real_open = os.fsync, os.open

    def fsync(fd: int) -> None:
        info = os.fstat(fd)
        if info.st_ino == folder.stat().st_ino:
            synced.append((info.st_ino, _names(folder)))
        real_fsync(fd)
    monkeypatch.setattr(os, "fsync", fsync)
    outcome = await backups.run_if_due(now=DAY1)
    assert outcome is not None and outcome.made is not None
    assert synced == [(folder.stat().st_ino, ["guidebot-20260310-040000.db"])]

    def no_folders(path: Any, flags: int, *args: Any, **kw: Any) -> int:
        if Path(path).is_dir():
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kw)
    monkeypatch.setattr(os, "open", no_folders)
    again = await backups.run_if_due(now=DAY1 + timedelta(days=1))
    assert again is not None and again.made is not None
    assert _names(folder) == ["guidebot-20260310-040000.db", "guidebot-20260311-040000.db"]
    assert len(synced) == 1
    await stack.http.close()


def test_check_tests_the_backup_folder(tmp_path: Path, sqlite_url: str) -> None:
    """`guidebot check`: [server.backup] dir there and writable, or creatable (not created);
    a folder that cannot be made is a problem; nothing said without [server.backup]."""
    problems: list[str] = []
    there = _load(tmp_path, sqlite_url, _section(tmp_path / "backups", keep=3))
    assert _backup_dir(there, problems.append) == (
        f"server.backup.dir {tmp_path / 'backups'}: writable; a copy daily at 03:00 UTC, "
        "the newest 3 kept")
    assert list((tmp_path / "backups").iterdir()) == []  # the probe is gone

    later = tmp_path / "new" / "copies"
    creatable = load_settings(write_config(tmp_path, sqlite_url, extra=_section(later)))
    assert _backup_dir(creatable, problems.append) == (
        f"server.backup.dir {later}: can be created (in {tmp_path}); a copy daily at 03:00 "
        "UTC, the newest 7 kept")
    assert not (tmp_path / "new").exists() and problems == []

    (tmp_path / "a-file").write_text("not a folder")
    blocked = tmp_path / "a-file" / "copies"
    refused = load_settings(write_config(tmp_path, sqlite_url, extra=_section(blocked)))
    assert _backup_dir(refused, problems.append) is None
    assert problems == [f"server.backup.dir {blocked} cannot be created: "
                        f"{tmp_path / 'a-file'} is not a folder"]

    none = load_settings(write_config(tmp_path, sqlite_url))
    assert _backup_dir(none, problems.append) is None and len(problems) == 1
