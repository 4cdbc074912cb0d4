"""CLI: `guidebot points export --period YYYY-MM [--tenant T] [--csv PATH]` (every points
entry of the month, for crediting the brand's mall) and `guidebot points push [--tenant T]`
(deliver entries the webhook has not acknowledged yet)."""

from __future__ import annotations

import argparse
import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from guidebot.cli_tenants import tenant_ids
from guidebot.db.engine import Database
from guidebot.errors import ValidationFailed
from guidebot.materials.points import Points
from guidebot.settings import Settings

COLUMNS = ("tenant", "id", "guide", "kind", "points", "material_id", "grade", "user",
           "period", "reason", "operator", "created_at")


def add_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> dict[str, Any]:
    points = command("points", "material contributors' points: export a month, push the "
                     "webhook")
    points.add_argument("action", choices=["export", "push"])
    points.add_argument("--period", help="YYYY-MM in each tenant's time zone (export)")
    points.add_argument("--tenant", help="one tenant (default: every tenant)")
    points.add_argument("--csv", help="export: write CSV to PATH ('-': stdout) instead of JSON")
    return {"points": points_command}


def to_csv(entries: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(entries)
    return out.getvalue()


async def points_command(settings: Settings, args: argparse.Namespace) -> int:
    tenants = tenant_ids(settings, args.tenant)
    if args.action == "export" and not args.period:
        raise ValidationFailed("period: --period YYYY-MM is required to export")
    db = Database(settings.database_url)
    points = Points(settings, db)
    try:
        if args.action == "push":
            for tenant in tenants:
                result = await points.push(tenant)
                print(f"points webhook {tenant}: {result['delivered']} delivered, "
                      f"{result['failed']} failed")
            return 0
        entries = [e for tenant in tenants for e in await points.entries(tenant, args.period)]
        boards = {t: (await points.leaderboard(t, args.period))["guides"] for t in tenants}
    finally:
        await db.dispose()
    if args.csv is None:
        print(json.dumps({"period": args.period, "leaderboard": boards, "entries": entries},
                         ensure_ascii=False, indent=2))
    elif args.csv == "-":
        print(to_csv(entries), end="")
    else:
        Path(args.csv).write_text(to_csv(entries), encoding="utf-8")
        print(f"wrote {len(entries)} points entries to {args.csv}")
    return 0
