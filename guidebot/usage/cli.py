"""CLI: `guidebot usage --period YYYY-MM [--tenant T] [--csv PATH]`."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from guidebot.cli_tenants import tenant_ids
from guidebot.db.engine import Database
from guidebot.settings import Settings
from guidebot.usage import metering


def add_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> dict[str, Any]:
    usage = command("usage", "usage per tenant and month, for the SaaS operator")
    usage.add_argument("--period", required=True, help="YYYY-MM, each tenant's time zone")
    usage.add_argument("--tenant", help="one tenant (default: every tenant)")
    usage.add_argument("--csv", help="write CSV to PATH ('-': stdout) instead of JSON")
    return {"usage": usage_command}


async def usage_command(settings: Settings, args: argparse.Namespace) -> int:
    tenants = [settings.tenant(t) for t in tenant_ids(settings, args.tenant)]
    db = Database(settings.database_url)
    try:
        report = await metering.usage_report(db, tenants, args.period)
    finally:
        await db.dispose()
    if args.csv is None:
        print(json.dumps({"period": args.period, "tenants": report}, ensure_ascii=False,
                         indent=2))
    elif args.csv == "-":
        print(metering.to_csv(report), end="")
    else:
        Path(args.csv).write_text(metering.to_csv(report), encoding="utf-8")
        print(f"wrote {len(report)} tenant(s) to {args.csv}")
    return 0
