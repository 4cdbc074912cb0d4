"""`guidebot db backup` and `guidebot db restore`: a consistent copy of the SQLite database
while callbacks keep arriving, its restore, and what both refuse."""

from __future__ import annotations

import asyncio
import errno
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from guidebot.cli import main
from guidebot.db.engine import Database
from guidebot.db.migrate import head_revisions
from guidebot.db.models import InboxItem
from guidebot.db.repo import contacts
from tests.support.stack import Stack, known, start_stack
from tests.support.wecom import add_contact_xml

CORP = "wwacme5823bf96d3bd"


def _config(tmp_path: Path) -> str:
    return str(tmp_path / "config.toml")


async def _cli(tmp_path: Path, *args: str) -> int:
    return await asyncio.to_thread(main, ["--config", _config(tmp_path), "db", *args])


def _live(tmp_path: Path) -> Path:
    return tmp_path / "guidebot.db"


async def _backup_while_callbacks_arrive(stack: Stack, tmp_path: Path, target: Path
                                         ) -> tuple[int, set[str]]:
    """Run the backup while a task posts encrypted adds in a loop; the exit status and the
    digests of the inbox items acknowledged before the backup started."""
    stop = asyncio.Event()
    acked = 0

    async def callbacks() -> None:
        nonlocal acked
        n = 0
        while not stop.is_set():
            n += 1
            xml = add_contact_xml(corp_id=CORP, guide="lina", external_userid=f"wmload{n:05d}")
            assert await stack.post_callback(xml) == 200
            acked += 1

    sender = asyncio.create_task(callbacks())
    while acked < 20:  # the stream is flowing before the backup starts
        await asyncio.sleep(0)
    before = {row.digest for row in await stack.inbox_rows()}
    try:
        code = await _cli(tmp_path, "backup", "--to", str(target))
    finally:
        stop.set()
        await sender
    return code, before


async def _copy_revisions(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT version_num FROM alembic_version")}


async def test_a_backup_under_load_is_consistent_and_restore_puts_it_back(
        aiohttp_server, tmp_path: Path, sqlite_url: str,  # type: ignore[no-untyped-def]
        capsys: pytest.CaptureFixture[str]) -> None:
    stack = await start_stack(aiohttp_server, tmp_path, sqlite_url)
    try:
        await known(stack, customers=("wmbefore",), guides=("lina",))
        target = tmp_path / "copies" / "guidebot-backup.db"
        target.parent.mkdir()
        code, before = await _backup_while_callbacks_arrive(stack, tmp_path, target)
        assert code == 0
        out = capsys.readouterr().out
        revision = max(head_revisions())
        assert f"backup written to {target}" in out and f"schema version {revision}" in out
        assert " MB in " in out
        assert [p.name for p in target.parent.iterdir()] == [target.name]  # no partial left
        with sqlite3.connect(target) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert await _copy_revisions(target) == await _copy_revisions(_live(tmp_path))

        copy = Database(f"sqlite+aiosqlite:///{target}")
        try:
            async with copy.read() as s:
                digests = set((await s.execute(select(InboxItem.digest))).scalars())
                customer = await contacts.get_customer(s, tenant="acme",
                                                       external_userid="wmbefore")
        finally:
            await copy.dispose()
        assert len(before) >= 20 and before <= digests
        assert customer is not None and customer.external_userid == "wmbefore"

        # added after the backup: gone once it is restored
        await known(stack, customers=("wmafter",))
        assert await _cli(tmp_path, "restore", "--from", str(target)) == 2
        assert "is in use" in capsys.readouterr().err  # the stack still has it open
    finally:
        await stack.http.close()
        await stack.server.close()

    assert await _cli(tmp_path, "restore", "--from", str(target)) == 0
    out = capsys.readouterr().out
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("guidebot.db.before-restore-")
            and not p.name.endswith(("-wal", "-shm"))]
    assert len(kept) == 1 and f"kept as {kept[0]}" in out
    assert "guidebot db upgrade" not in out  # the backup is at this code's schema

    restored = Database(sqlite_url)
    old = Database(f"sqlite+aiosqlite:///{kept[0]}")
    try:
        async with restored.read() as s:
            assert await contacts.get_customer(s, tenant="acme",
                                               external_userid="wmafter") is None
            assert await contacts.get_customer(s, tenant="acme",
                                               external_userid="wmbefore") is not None
        async with old.read() as s:  # the previous database, whole
            assert await contacts.get_customer(s, tenant="acme",
                                               external_userid="wmafter") is not None
    finally:
        await restored.dispose()
        await old.dispose()


async def test_backup_refuses_an_existing_path_and_the_live_database(
        aiohttp_server, tmp_path: Path, sqlite_url: str,  # type: ignore[no-untyped-def]
        capsys: pytest.CaptureFixture[str]) -> None:
    stack = await start_stack(aiohttp_server, tmp_path, sqlite_url)
    await stack.http.close()
    target = tmp_path / "there.db"
    target.write_bytes(b"an operator's file")
    assert await _cli(tmp_path, "backup", "--to", str(target)) == 2
    err = capsys.readouterr().err
    assert f"{target} exists" in err and "--force" in err
    assert target.read_bytes() == b"an operator's file"

    assert await _cli(tmp_path, "backup", "--to", str(target), "--force") == 0
    with sqlite3.connect(target) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    capsys.readouterr()

    live = _live(tmp_path)
    size = live.stat().st_size
    for same in (str(live), str(tmp_path / "." / "guidebot.db")):
        assert await _cli(tmp_path, "backup", "--to", same, "--force") == 2
        assert "is the live database" in capsys.readouterr().err
    assert live.stat().st_size == size
    assert await _cli(tmp_path, "backup") == 2
    assert "needs --to PATH" in capsys.readouterr().err


@pytest.fixture
async def backed_up(aiohttp_server, tmp_path: Path,  # type: ignore[no-untyped-def]
                    sqlite_url: str) -> Path:
    """A stopped stack's database and a backup of it (tmp_path/backup.db)."""
    stack = await start_stack(aiohttp_server, tmp_path, sqlite_url)
    await known(stack, customers=("wmkept",))
    target = tmp_path / "backup.db"
    try:
        assert await _cli(tmp_path, "backup", "--to", str(target)) == 0
    finally:
        await stack.http.close()
        await stack.server.close()
    return target


def _unchanged(tmp_path: Path) -> None:
    assert not [p for p in tmp_path.iterdir() if ".before-restore-" in p.name]
    with sqlite3.connect(_live(tmp_path)) as conn:
        assert conn.execute("SELECT count(*) FROM customers WHERE external_userid = 'wmkept'"
                            ).fetchone()[0] == 1


async def test_restore_refuses_a_newer_schema(backed_up: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    with sqlite3.connect(backed_up) as conn:
        conn.execute("DELETE FROM alembic_version")
        conn.execute("INSERT INTO alembic_version (version_num) VALUES ('9999')")
    capsys.readouterr()
    assert await _cli(tmp_path, "restore", "--from", str(backed_up)) == 2
    err = capsys.readouterr().err
    assert "schema version 9999, newer than this guidebot's" in err
    _unchanged(tmp_path)


async def test_restore_refuses_a_corrupt_file(backed_up: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    corrupt = tmp_path / "corrupt.db"
    data = bytearray(backed_up.read_bytes())
    page = 4096
    data[page * 2:page * 6] = os.urandom(page * 4)  # pages of tables and indexes overwritten
    corrupt.write_bytes(bytes(data))
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(os.urandom(page * 8))
    capsys.readouterr()
    for bad in (corrupt, garbage):
        assert await _cli(tmp_path, "restore", "--from", str(bad)) == 2
        err = capsys.readouterr().err
        assert "integrity check" in err or "not a usable SQLite database" in err, err
    _unchanged(tmp_path)


async def test_restore_of_an_older_backup_says_to_upgrade(
        backed_up: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with sqlite3.connect(backed_up) as conn:
        conn.execute("DELETE FROM alembic_version")
        conn.execute("INSERT INTO alembic_version (version_num) VALUES ('0062')")
    capsys.readouterr()
    assert await _cli(tmp_path, "restore", "--from", str(backed_up)) == 0
    assert "run `guidebot db upgrade`" in capsys.readouterr().out


def test_a_restore_where_there_is_no_database_yet_keeps_nothing(
        backed_up: Path, tmp_path: Path) -> None:
    from guidebot.db import backup

    fresh = tmp_path / "elsewhere" / "guidebot.db"
    fresh.parent.mkdir()
    done = backup.restore(fresh, backed_up)
    assert done.kept is None and fresh.is_file()
    assert list(fresh.parent.iterdir()) == [fresh]


async def test_postgresql_is_refused_with_the_pg_dump_command(
        db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("the PostgreSQL variant (the SQLite one is the tests above)")
    from sqlalchemy.engine import make_url

    from tests.support.stack import write_config

    url = make_url(db_url).set(password="s3cret-pw")
    write_config(tmp_path, url.render_as_string(hide_password=False))
    assert await _cli(tmp_path, "backup", "--to", str(tmp_path / "x.db")) == 2
    err = capsys.readouterr().err
    assert "pg_dump --format=custom" in err and f"--dbname={url.database}" in err
    assert f"--host={url.host}" in err and "s3cret-pw" not in err
    assert not (tmp_path / "x.db").exists()
    assert await _cli(tmp_path, "restore", "--from", str(tmp_path / "x.db")) == 2
    err = capsys.readouterr().err
    assert "pg_restore --clean" in err and "s3cret-pw" not in err


def _crashed_with_a_wal(live: Path) -> None:
    """The live database as a process killed mid-work leaves it: a row committed in the WAL
    only (no checkpoint), the -wal and -shm beside the file."""
    saved = live.with_name("crash")
    saved.mkdir()
    conn = sqlite3.connect(live, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    columns = [r[1] for r in conn.execute("PRAGMA table_info(customers)")]
    picked = ", ".join("'wminwal'" if c == "external_userid" else c for c in columns)
    conn.execute(f"INSERT INTO customers ({', '.join(columns)}) SELECT {picked} "
                 "FROM customers WHERE external_userid = 'wmkept'")
    for suffix in ("", "-wal", "-shm"):
        (saved / f"f{suffix}").write_bytes(live.with_name(live.name + suffix).read_bytes())
    conn.close()
    for suffix in ("", "-wal", "-shm"):
        live.with_name(live.name + suffix).write_bytes((saved / f"f{suffix}").read_bytes())
    for f in saved.iterdir():
        f.unlink()
    saved.rmdir()


PROBE = """import sqlite3, sys
try:
    sqlite3.connect(sys.argv[1], timeout=0).execute("SELECT count(*) FROM sqlite_master")
    print("readable")
except sqlite3.DatabaseError as exc:
    print(exc)
"""  # another process opening the database


def test_restore_holds_the_old_file_locked_until_the_new_one_has_the_name(
        backed_up: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While the files are renamed the old database stays locked (no process can read or
    write it), and once restored the kept file is the whole previous database, its WAL
    written back, with no -wal, -shm or -journal left under the live name."""
    from guidebot.db import backup

    live = _live(tmp_path)
    _crashed_with_a_wal(live)
    assert live.with_name(live.name + "-wal").stat().st_size > 0
    seen: list[str] = []
    rename = os.replace

    def watching(src: os.PathLike[str] | str, dst: os.PathLike[str] | str) -> None:
        if Path(dst) == live:  # the restored file about to take the name
            kept = next(p for p in tmp_path.iterdir()
                        if p.name.startswith("guidebot.db.before-restore-")
                        and not p.name.endswith("-shm"))
            seen.append(subprocess.run([sys.executable, "-c", PROBE, str(kept)],
                                       capture_output=True, text=True, check=True
                                       ).stdout.strip())
        rename(src, dst)

    monkeypatch.setattr(os, "replace", watching)
    done = backup.restore(live, backed_up)
    monkeypatch.undo()
    assert seen == ["database is locked"]
    assert done.kept is not None
    # the crash's -shm goes with the old file (stale: SQLite rebuilds it); its WAL is in it
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("guidebot.db")) == [
        "guidebot.db", done.kept.name, f"{done.kept.name}-shm"]
    with sqlite3.connect(done.kept) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert {r[0] for r in conn.execute(
            "SELECT external_userid FROM customers")} >= {"wmkept", "wminwal"}
    with sqlite3.connect(live) as conn:
        assert conn.execute("SELECT count(*) FROM customers WHERE external_userid = "
                            "'wminwal'").fetchone()[0] == 0


def test_restore_is_refused_while_a_connection_holds_the_database(
        backed_up: Path, tmp_path: Path) -> None:
    from guidebot.db import backup

    live = _live(tmp_path)
    idle = sqlite3.connect(live, isolation_level=None)  # a serving process between requests
    idle.execute("PRAGMA journal_mode=WAL")
    idle.execute("SELECT count(*) FROM customers").fetchone()
    try:
        with pytest.raises(backup.BackupRefused, match="is in use"):
            backup.restore(live, backed_up)
    finally:
        idle.close()
    _unchanged(tmp_path)


def _no_hard_links(monkeypatch: pytest.MonkeyPatch) -> None:
    """The platform as an SMB/CIFS, vfat or NAS mount has it: link(2) refused."""
    def refused(*_: object, **__: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")
    monkeypatch.setattr(os, "link", refused)


async def test_backup_on_a_filesystem_without_hard_links(
        backed_up: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    _no_hard_links(monkeypatch)
    folder = tmp_path / "nas"
    folder.mkdir()
    target = folder / "copy.db"
    assert await _cli(tmp_path, "backup", "--to", str(target)) == 0
    assert _names(folder) == ["copy.db"]  # no partial, no reserved file left
    with sqlite3.connect(target) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM customers WHERE external_userid = "
                            "'wmkept'").fetchone()[0] == 1
    capsys.readouterr()

    there = folder / "there.db"

    def appears_meanwhile(_: object, dst: object) -> None:  # after the command looked
        Path(str(dst)).write_bytes(b"an operator's file")
        raise OSError(errno.EPERM, "Operation not permitted")
    monkeypatch.setattr(os, "link", appears_meanwhile)
    assert await _cli(tmp_path, "backup", "--to", str(there)) == 2
    assert f"{there} exists" in capsys.readouterr().err
    assert there.read_bytes() == b"an operator's file"
    assert _names(folder) == ["copy.db", "there.db"]


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


async def test_restore_reads_the_backup_without_writing_it(
        backed_up: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A backup is opened read-only: from a read-only file in a read-only folder (a read-only
    mount) it is restored; a backup kept in WAL mode with a WAL not yet written back is
    restored whole, neither file touched."""
    from guidebot.db import backup

    shelf = tmp_path / "shelf"
    shelf.mkdir()
    wal_mode = shelf / "wal-mode.db"
    wal_mode.write_bytes(backed_up.read_bytes())
    _crashed_with_a_wal(wal_mode)  # a row, 'wminwal', in its WAL only
    read_only = shelf / "read-only.db"
    read_only.write_bytes(backed_up.read_bytes())
    read_only.chmod(0o444)
    shelf.chmod(0o555)
    files = [shelf / n for n in ("wal-mode.db", "wal-mode.db-wal", "read-only.db")]
    before = {f: (f.read_bytes(), f.stat().st_mtime_ns) for f in files}
    capsys.readouterr()
    try:
        if os.geteuid() != 0:  # root reads and writes whatever the modes say
            with pytest.raises(PermissionError):
                (shelf / "probe").write_bytes(b"")
        assert await _cli(tmp_path, "restore", "--from", str(read_only)) == 0, (
            capsys.readouterr().err)
        with sqlite3.connect(_live(tmp_path)) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert conn.execute("SELECT count(*) FROM customers WHERE external_userid = "
                                "'wmkept'").fetchone()[0] == 1

        shelf.chmod(0o755)  # WAL mode: SQLite reads it through a -shm beside it
        backup.restore(_live(tmp_path), wal_mode,  # kept under another second's name
                       now=datetime(2030, 1, 1, tzinfo=UTC))
        with sqlite3.connect(_live(tmp_path)) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert {r[0] for r in conn.execute("SELECT external_userid FROM customers")
                    } >= {"wmkept", "wminwal"}
        assert {f: (f.read_bytes(), f.stat().st_mtime_ns) for f in files} == before
    finally:
        shelf.chmod(0o755)
