"""CLI: `guidebot customer erase --tenant T <external_userid>` erases one customer
(删除客户个人信息), as the admin API's POST /customers/{external_userid}/erase;
`guidebot customer export --tenant T <external_userid> [--out PATH]` writes everything held
about them (查阅复制) as the admin API's GET /customers/{external_userid}/personal-data (a file
readable by its owner only), and records the access in 操作日志 (actor "cli"); an erasure
is recorded there too, under the tombstone."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from guidebot.audit.log import AuditLog
from guidebot.cli_tenants import known_tenant
from guidebot.contacts import erasure, personal_data
from guidebot.content.catalog import load_catalog
from guidebot.content.library import load_library
from guidebot.db.engine import Database
from guidebot.errors import Refusal
from guidebot.settings import Settings


def add_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> dict[str, Any]:
    customer = command("customer", "one customer: export or erase their personal information")
    customer.add_argument("action", choices=["erase", "export"])
    customer.add_argument("--tenant", required=True)
    customer.add_argument("--out", default="", help="export: the JSON file (default: stdout)")
    customer.add_argument("external_userid")
    return {"customer": customer_command}


async def customer_command(settings: Settings, args: argparse.Namespace) -> int:
    known_tenant(settings, args.tenant)
    db = Database(settings.database_url)
    try:
        if args.action == "export":
            return await _export(settings, db, args)
        done = await erasure.erase(db, args.tenant, args.external_userid, by="cli")
        await AuditLog(db).record(args.tenant, "cli", ERASE_ACTION,
                                  {"external_userid": done["tombstone"]}, 200)
    except Refusal as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        await db.dispose()
    print(json.dumps(done, ensure_ascii=False, indent=2))
    return 0


EXPORT_ACTION = "customer export"  # 操作日志's action for the CLI's export
ERASE_ACTION = "customer erase"  # and for its erasure (logged under the tombstone)


async def _export(settings: Settings, db: Database, args: argparse.Namespace) -> int:
    library = load_library(settings.content_library)
    document = await personal_data.export(
        db, settings.tenant(args.tenant), args.external_userid,
        fields=library.profile_fields, catalog=load_catalog(settings.content_library))
    await AuditLog(db).record(args.tenant, "cli", EXPORT_ACTION,
                              {"external_userid": args.external_userid}, 200)
    text = json.dumps(document, ensure_ascii=False, indent=2)
    if args.out:
        # personal data: readable by its owner only (0600), whatever the umask
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with open(fd, "w", encoding="utf-8") as out:
            out.write(text + "\n")
    else:
        print(text)
    return 0
