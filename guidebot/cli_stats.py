"""CLI: `guidebot stats backfill [--tenant T]` rebuilds the daily statistics from the data."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from guidebot.cli_tenants import tenant_ids
from guidebot.db.engine import Database
from guidebot.services import build_services
from guidebot.settings import Settings


def add_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> dict[str, Any]:
    stats = command("stats", "daily statistics for the console and the metrics API")
    stats.add_argument("action", choices=["backfill"])
    stats.add_argument("--tenant", help="one tenant (default: every tenant in the config)")
    return {"stats": stats_command}


async def stats_command(settings: Settings, args: argparse.Namespace) -> int:
    tenants = tenant_ids(settings, args.tenant)
    db = Database(settings.database_url)
    services = build_services(settings, db)
    try:
        for tenant in tenants:
            rows = await services.stats.backfill(tenant)
            print(f"stats rebuilt for {tenant}: {rows} source rows counted")
    finally:
        await services.close()
        await db.dispose()
    return 0
