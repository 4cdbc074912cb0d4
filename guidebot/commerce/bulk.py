"""Bulk attribution for backfills: the same rules as the webhook path, set-based I/O.

Orders are processed in chunks sorted by customer: one range query fetches the chunk's touches,
one its bindings; the pure attribution functions decide each order; orders, tracking touches and
ledger entries go in with multi-row inserts. Known order numbers are skipped (idempotent); an
order with a held refund is left to the per-order path so the refund is applied with it.
"""

from __future__ import annotations

import bisect
import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from guidebot.commerce import attribution, periods
from guidebot.commerce.orders import ensure_rules
from guidebot.commerce.rules import RuleSet
from guidebot.commerce.schema import PaidOrder
from guidebot.db.engine import Database
from guidebot.db.models_commerce import RuleVersion
from guidebot.db.repo import commerce_bulk as repo
from guidebot.db.repo import commerce_ledger as ledger_repo
from guidebot.settings import TenantSettings

CHUNK = 20_000


@dataclass
class BulkResult:
    recorded: int = 0
    duplicate: int = 0
    deferred: list[PaidOrder] | None = None  # orders with held refunds: use OrderService.paid


class _Versions:
    def __init__(self, versions: Sequence[RuleVersion]) -> None:
        self.starts = [v.effective_at for v in versions]
        self.versions = list(versions)
        self.rules = [RuleSet.from_json(v.rules) for v in versions]

    def at(self, paid_at: datetime) -> int:
        return max(bisect.bisect_right(self.starts, paid_at) - 1, 0)


async def record_many(db: Database, tenant: TenantSettings, orders: Sequence[PaidOrder],
                      clock: Callable[[], datetime],
                      progress: Callable[[int], None] | None = None) -> BulkResult:
    """Attribute and ledger orders whose customer.external_userid is already resolved."""
    result = BulkResult(deferred=[])
    async with db.write() as s:
        await ensure_rules(s, tenant, clock())
        versions = _Versions(await repo.rule_versions(s, tenant=tenant.id))
    ordered = sorted(orders, key=lambda o: (o.customer.external_userid or "", o.paid_at))
    for start in range(0, len(ordered), CHUNK):
        await _chunk(db, tenant, ordered[start:start + CHUNK], versions, clock(), result)
        if progress:
            progress(min(start + CHUNK, len(ordered)))
    return result


async def _chunk(db: Database, tenant: TenantSettings, chunk: Sequence[PaidOrder],
                 versions: _Versions, now: datetime, result: BulkResult) -> None:
    customers = [o.customer.external_userid for o in chunk if o.customer.external_userid]
    window = max(r.share_link_window_days for r in versions.rules)
    async with db.write() as s:
        await ledger_repo.lock_tenant(s, tenant=tenant.id)
        await repo.widen_cache(s)
        numbers = [o.order_no for o in chunk]
        known = await repo.known_orders(s, tenant=tenant.id, order_nos=numbers)
        held = await repo.held_refund_orders(s, tenant=tenant.id, order_nos=numbers)
        touches: dict[str, list[Any]] = defaultdict(list)
        bindings: dict[str, list[attribution.BindingFact]] = defaultdict(list)
        if customers:
            first, last = min(customers), max(customers)
            low = min(o.paid_at for o in chunk) - timedelta(days=window)
            high = max(o.paid_at for o in chunk)
            for row in await repo.touches_in_range(s, tenant=tenant.id, first=first, last=last,
                                                   start=low, end=high):
                touches[row[0]].append(row)
            for b in await repo.bindings_in_range(s, tenant=tenant.id, first=first, last=last):
                bindings[b[0]].append(attribution.BindingFact(b[1], b[2], b[3], b[4], b[5]))
        links = await repo.links_by_token(
            s, tenant=tenant.id, tokens=sorted({o.tracking for o in chunk if o.tracking}))
        period = periods.open_period(now, tenant.tz,
                                     await ledger_repo.settled_periods(s, tenant=tenant.id))
        rows: dict[str, list[dict[str, Any]]] = {"orders": [], "touches": [], "entries": []}
        for order in chunk:
            if order.order_no in known:
                result.duplicate += 1
            elif order.order_no in held:
                assert result.deferred is not None
                result.deferred.append(order)
            else:
                known.add(order.order_no)
                _one(tenant, order, versions, touches, bindings, links, now, period, rows)
                result.recorded += 1
        await repo.insert_rows(s, orders=rows["orders"], touches=rows["touches"],
                               entries=rows["entries"])


def _one(tenant: TenantSettings, order: PaidOrder, versions: _Versions,
         touches: dict[str, list[Any]], bindings: dict[str, list[attribution.BindingFact]],
         links: dict[str, Any], now: datetime, period: str,
         rows: dict[str, list[dict[str, Any]]]) -> None:
    index = versions.at(order.paid_at)
    rules, version = versions.rules[index], versions.versions[index]
    customer = order.customer.external_userid
    facts = _window(touches.get(customer or "", []), order.paid_at,
                    rules.share_link_window_days)
    link = links.get(order.tracking) if order.tracking else None
    if link is not None:
        facts.append(attribution.TouchFact(link.guide, order.paid_at, link.token, "order"))
    decided = attribution.attribute(rules, paid_at=order.paid_at, store_id=order.store_id,
                                    touches=facts, bindings=bindings.get(customer or "", []))
    lines = attribution.price_lines(rules, order.items, earns=decided.guide is not None)
    evidence = {**decided.evidence, "rule_version": {
        "id": version.id, "config_hash": version.config_hash,
        "effective_at": version.effective_at.isoformat()}}
    if order.tracking and link is None:
        evidence["unknown_tracking"] = True
    commission = sum(x.commission_fen for x in lines)
    rows["orders"].append({
        "tenant": tenant.id, "order_no": order.order_no, "external_userid": customer,
        "unionid": order.customer.unionid, "openid": order.customer.openid,
        "store_id": order.store_id, "tracking": order.tracking[:64], "paid_at": order.paid_at,
        "amount_fen": order.amount_fen, "rule": decided.rule, "guide": decided.guide,
        "credited_store": order.store_id if decided.rule == "store" else None,
        "commission_fen": commission, "rule_version_id": version.id,
        "evidence": json.dumps(evidence), "lines": json.dumps([x.__dict__ for x in lines]),
        "received_at": now})
    if link is not None:
        # Recorded as a touch, it counts for this customer's later orders too (as per order).
        bisect.insort(touches[customer or ""], (customer, order.paid_at, None, link.guide,
                                                link.token, "order"), key=lambda r: r[1])
        rows["touches"].append({
            "tenant": tenant.id, "external_userid": customer, "unionid": order.customer.unionid,
            "openid": order.customer.openid, "guide": link.guide, "token": link.token,
            "kind": "order", "sku": link.sku, "category": "", "dur_s": 0, "at": order.paid_at})
    if decided.guide:
        rows["entries"].append({
            "tenant": tenant.id, "key": f"earn:{order.order_no}", "kind": "earn",
            "guide": decided.guide, "order_no": order.order_no, "refund_no": None,
            "amount_fen": commission, "period": period, "reason": "", "operator": "",
            "created_at": now})


def _window(rows: list[Any], paid_at: datetime, days: int) -> list[attribution.TouchFact]:
    """The customer's touches in [paid_at − days, paid_at] (rows are sorted by time)."""
    ats = [r[1] for r in rows]
    lo = bisect.bisect_left(ats, paid_at - timedelta(days=days))
    hi = bisect.bisect_right(ats, paid_at)
    return [attribution.TouchFact(r[3], r[1], r[4], r[5], r[2]) for r in rows[lo:hi]]
