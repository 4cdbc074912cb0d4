"""CLI: `guidebot orders import` (CSV backfill) and `guidebot commissions statement|settle`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from guidebot.cli_tenants import known_tenant
from guidebot.commerce import bulk, csvimport, statements
from guidebot.commerce.schema import PaidOrder, RefundEvent
from guidebot.db.engine import Database
from guidebot.services import Services, build_services
from guidebot.settings import Settings

BAR_WIDTH = 30


def add_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> dict[str, Any]:
    orders = command("orders", "order backfill")
    orders.add_argument("action", choices=["import"])
    orders.add_argument("--tenant", required=True)
    orders.add_argument("file", type=Path, help="CSV file (columns: see docs/commerce.md)")
    commissions = command("commissions", "commission statements")
    commissions.add_argument("action", choices=["statement", "settle"])
    commissions.add_argument("--tenant", required=True)
    commissions.add_argument("--period", required=True, help="YYYY-MM, tenant timezone")
    commissions.add_argument("--csv", help="write the statement as CSV to PATH ('-': stdout)")
    commissions.add_argument("--operator", default="cli", help="who settles (settle only)")
    return {"orders": orders_command, "commissions": commissions_command}


_tenant = known_tenant


def _progress(done: int, total: int) -> None:
    filled = BAR_WIDTH * done // max(total, 1)
    print(f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total}", end="",
          file=sys.stderr, flush=True)


async def _with_services(settings: Settings, work: Callable[[Services], Any]) -> Any:
    db = Database(settings.database_url)
    services = build_services(settings, db)
    try:
        await services.record_tenants()
        return await work(services)
    finally:
        await services.close()
        await db.dispose()


async def orders_command(settings: Settings, args: argparse.Namespace) -> int:
    tenant = _tenant(settings, args.tenant)
    events, problems = csvimport.read_events(args.file)
    if problems:
        for problem in problems:
            print(f"{args.file}: {problem}", file=sys.stderr)
        return 2

    async def run(services: Services) -> dict[str, int]:
        """Orders through the bulk path (one transaction per chunk), then the refunds one by
        one as the webhook applies them (so every order they name is known by then)."""
        commerce = services.commerce
        orders = [e for e in events if isinstance(e, PaidOrder)]
        refunds = [e for e in events if isinstance(e, RefundEvent)]
        result = await bulk.record_many(commerce.db, tenant, orders, commerce.clock,
                                        progress=lambda done: _progress(done, len(events)))
        counts = {"recorded": result.recorded, "duplicate": result.duplicate,
                  "held refunds applied": len(result.refunds_applied)}
        for index, refund in enumerate(refunds, start=len(orders) + 1):
            outcome = await commerce.orders.refunded(tenant, refund)
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
            _progress(index, len(events))
        return {k: v for k, v in counts.items() if v}

    counts = await _with_services(settings, run)
    print(file=sys.stderr)
    print("imported: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 0


async def commissions_command(settings: Settings, args: argparse.Namespace) -> int:
    tenant = _tenant(settings, args.tenant)

    async def run(services: Services) -> dict[str, Any]:
        if args.action == "settle":
            return await services.commerce.ledger.settle(tenant, args.period, args.operator)
        return await statements.statement(services.db, tenant, args.period)

    body = await _with_services(settings, run)
    if args.action == "settle":
        print(f"settled {body['period']}: net {body['net_fen']} fen over {body['guides']} guides")
        return 0
    text = statements.to_csv(body)
    if args.csv and args.csv != "-":
        Path(args.csv).write_text(text, encoding="utf-8")
        print(f"wrote {len(body['statements'])} statements to {args.csv}")
    else:
        print(text, end="")
    return 0
