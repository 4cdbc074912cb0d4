"""CLI: `guidebot retention run [--tenant T] [--dry-run]` deletes and blanks now what the
daily retention job would (guidebot/retention.py), and prints it per tenant."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from guidebot.cli_tenants import tenant_ids
from guidebot.db.engine import Database
from guidebot.retention import Retention
from guidebot.settings import Settings


def add_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> dict[str, Any]:
    retention = command("retention", "data retention: old inbox items, 微信客服 texts, "
                        "操作日志 entries and the texts of sent outbox messages")
    retention.add_argument("action", choices=["run"])
    retention.add_argument("--tenant", help="one tenant (default: every tenant in the config)")
    retention.add_argument("--dry-run", action="store_true",
                           help="count what would be deleted or blanked; change nothing")
    return {"retention": retention_command}


def _shown(count: int | None, days: int) -> str:
    return "kept forever (0 days)" if count is None else f"{count} (older than {days} days)"


async def retention_command(settings: Settings, args: argparse.Namespace) -> int:
    tenants = tenant_ids(settings, args.tenant)
    db = Database(settings.database_url)
    retention = Retention(settings, db)
    verbs = (("would be deleted", "would be blanked") if args.dry_run
             else ("deleted", "blanked"))
    try:
        for tenant in tenants:
            keep = settings.tenant(tenant).retention
            pruned = await retention.run(tenant, dry_run=args.dry_run)
            print(f"{tenant}: handled inbox items {verbs[0]}: "
                  f"{_shown(pruned.inbox_deleted, keep.inbox_days)}; "
                  f"微信客服 texts {verbs[1]}: "
                  f"{_shown(pruned.kf_texts_blanked, keep.kf_text_days)}; "
                  f"操作日志 entries {verbs[0]}: "
                  f"{_shown(pruned.audit_deleted, keep.audit_days)}; "
                  f"outbox texts {verbs[1]}: "
                  f"{_shown(pruned.outbox_blanked, keep.outbox_days)}")
    finally:
        await db.dispose()
    return 0
