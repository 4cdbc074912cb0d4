"""CLI: `guidebot db upgrade | backup --to PATH [--force] | restore --from PATH`."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from guidebot.db import backup
from guidebot.settings import Settings


def add_arguments(db: argparse.ArgumentParser) -> None:
    db.add_argument("action", choices=["upgrade", "backup", "restore"])
    db.add_argument("--to", metavar="PATH", help="backup: the file to write")
    db.add_argument("--force", action="store_true", help="backup: replace an existing --to")
    db.add_argument("--from", dest="source", metavar="PATH", help="restore: the backup file")


async def db_command(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "upgrade":
        from guidebot.db.migrate import upgrade_async

        await upgrade_async(settings.database_url)
        print("database is at the latest schema")
        return 0
    wanted = {"backup": ("--to", args.to), "restore": ("--from", args.source)}[args.action]
    if not wanted[1]:
        raise backup.BackupRefused(f"guidebot db {args.action} needs {wanted[0]} PATH")
    database = backup.sqlite_file(settings.database_url)
    if database is None:
        raise backup.BackupRefused(backup.postgres_advice(settings.database_url, args.action))
    if args.action == "backup":
        done = await asyncio.to_thread(backup.backup, database, Path(args.to),
                                       force=args.force)
        print(f"backup written to {done.path}: {done.size / 1e6:.1f} MB in "
              f"{done.seconds:.2f} s, schema version {backup.schema_version(done.revisions)}")
        return 0
    restored = await asyncio.to_thread(backup.restore, database, Path(args.source))
    kept = (f"the previous database is kept as {restored.kept}" if restored.kept else
            "there was no database before")
    print(f"restored {args.source} into {restored.database} (schema version "
          f"{backup.schema_version(restored.revisions)}); {kept}")
    if not restored.up_to_date:
        print("the backup is older than this guidebot: run `guidebot db upgrade` "
              "before `guidebot serve --no-migrate` (plain `serve` migrates at start)")
    return 0

