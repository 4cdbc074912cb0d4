"""Commission statements per period (tenant-timezone month), as JSON and CSV, and order views."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from guidebot.commerce import periods
from guidebot.commerce.evidence import explain, lines_view
from guidebot.commerce.ledger import net_of
from guidebot.db.engine import Database
from guidebot.db.repo import commerce_ledger as ledger_repo
from guidebot.db.repo import commerce_orders as orders_repo
from guidebot.errors import NotFound
from guidebot.settings import TenantSettings

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_FIELDS = ("period", "guide", "earned_fen", "clawback_fen", "adjustment_fen", "net_fen",
              "orders")


async def statement(db: Database, tenant: TenantSettings, period: str) -> dict[str, Any]:
    periods.parse(period)
    async with db.read() as s:
        rows = await ledger_repo.statement_rows(s, tenant=tenant.id, period=period)
        settled = await ledger_repo.get_settlement(s, tenant=tenant.id, period=period)
    return {"period": period, "timezone": tenant.timezone, "settled": settled is not None,
            "statements": [{**r, "net_fen": net_of(r)} for r in rows]}


def cell(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula (leading = + - @, tab or CR) gets a
    leading ' (OWASP CSV injection); numbers stay numbers."""
    if isinstance(value, str) and value[:1] in FORMULA_STARTS:
        return "'" + value
    return value


def to_csv(body: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in body["statements"]:
        writer.writerow({k: cell(v) for k, v in
                         {"period": body["period"], **{k: row[k] for k in CSV_FIELDS[1:]}}
                         .items()})
    return out.getvalue()


async def store_report(db: Database, tenant: TenantSettings, period: str) -> dict[str, Any]:
    """Store-credited orders (no guide commission) paid in the period."""
    start, end = periods.bounds(period, tenant.tz)
    async with db.read() as s:
        rows = await orders_repo.store_report(s, tenant=tenant.id, start=start, end=end)
    return {"period": period, "stores": rows}


async def order_view(db: Database, tenant: TenantSettings, order_no: str) -> dict[str, Any]:
    async with db.read() as s:
        order = await orders_repo.get_order(s, tenant=tenant.id, order_no=order_no)
        if order is None:
            raise NotFound(f"order_no: order {order_no} not found", code="order.unknown",
                           order_no=order_no)
        refunds = await orders_repo.refunds_of(s, tenant=tenant.id, order_no=order_no)
        version = await orders_repo.get_rules(s, version_id=order.rule_version_id)
        entries = await ledger_repo.entries(s, tenant=tenant.id, order_no=order_no)
    return {
        "order_no": order.order_no, "paid_at": order.paid_at.isoformat(),
        "customer": {"external_userid": order.external_userid, "unionid": order.unionid,
                     "openid": order.openid},
        "store_id": order.store_id, "tracking": order.tracking or None,
        "amount_fen": order.amount_fen,
        "attribution": {"rule": order.rule, "guide": order.guide,
                        "store": order.credited_store,
                        "evidence": explain(order.evidence, order.rule, version)},
        "rules": json.loads(version.rules) if version else None,
        "lines": lines_view(order.lines), "commission_fen": order.commission_fen,
        "refunds": [{"refund_no": r.refund_no, "refunded_at": r.refunded_at.isoformat(),
                     "status": r.status, "amount_fen": r.amount_fen,
                     "clawback_fen": r.clawback_fen} for r in refunds],
        "ledger": [{"kind": e.kind, "guide": e.guide, "amount_fen": e.amount_fen,
                    "period": e.period, "refund_no": e.refund_no,
                    "created_at": e.created_at.isoformat()} for e in entries],
    }
