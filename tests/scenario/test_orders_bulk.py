"""The bulk (backfill) path decides exactly like the per-order webhook path."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from guidebot.commerce import bulk
from guidebot.commerce.attribution import Item
from guidebot.commerce.schema import CustomerRef, PaidOrder, RefundEvent
from tests.support.commerce import signed_visit
from tests.support.stack import Stack
from tests.support.wecom import contact_event_xml

NOW = datetime(2026, 11, 20, 2, tzinfo=UTC)


async def _setup(stack: Stack) -> str:
    at = int(time.time()) - 20 * 86_400
    for customer, guide in (("wmB1", "lina"), ("wmB2", "zhaolei")):
        xml = contact_event_xml("add_external_contact", corp_id=stack.tenant().corp_id,
                                guide=guide, external_userid=customer, create_time=at)
        assert await stack.post_callback(xml) == 200
    await stack.runtime.drain()
    _, link = await stack.admin("/links", method="POST", json={"guide": "chenjing", "title": "t"})
    async with stack.http.get(f"{stack.bot_url}/t/{link['token']}",
                              params=signed_visit(stack, link["token"],
                                                  external_userid="wmB1")) as resp:
        assert resp.status == 204
    return str(link["token"])


def _orders(prefix: str, token: str, now: datetime) -> list[PaidOrder]:
    def order(n: int, customer: str | None, paid_at: datetime, tracking: str = "",
              store: str | None = "S01") -> PaidOrder:
        return PaidOrder(f"{prefix}{n}", paid_at, CustomerRef(customer), tracking, store,
                         (Item("SKU1", "beauty", 10_000 + n), Item("SKU2", "", 333)))

    return [order(1, "wmB1", now), order(2, "wmB1", now - timedelta(days=30)),
            order(3, "wmB2", now), order(4, "wmB3", now), order(5, "wmB3", now, store=None),
            order(6, "wmB4", now - timedelta(hours=1), tracking=token),
            order(7, "wmB4", now), order(8, None, now, tracking="nosuch")]


async def test_bulk_matches_the_per_order_path(stack: Stack) -> None:
    token = await _setup(stack)
    now = datetime.now(UTC)
    commerce = stack.runtime.services.commerce
    tenant = stack.tenant()
    for order in _orders("ONE-", token, now):
        await commerce.orders.paid(tenant, order, resolve_remote=False)
    many = _orders("BULK-", token, now)
    result = await bulk.record_many(commerce.db, tenant, many, commerce.clock)
    assert (result.recorded, result.duplicate) == (8, 0)
    again = await bulk.record_many(commerce.db, tenant, many, commerce.clock)
    assert (again.recorded, again.duplicate) == (0, 8)
    for n in range(1, 9):
        _, one = await stack.admin(f"/orders/ONE-{n}")
        _, many = await stack.admin(f"/orders/BULK-{n}")
        assert many["attribution"]["rule"] == one["attribution"]["rule"], n
        assert many["attribution"]["guide"] == one["attribution"]["guide"], n
        assert many["lines"] == one["lines"] and many["commission_fen"] == one["commission_fen"]
        assert [e["amount_fen"] for e in many["ledger"]] == [
            e["amount_fen"] for e in one["ledger"]]
    rules = [(await stack.admin(f"/orders/BULK-{n}"))[1]["attribution"]["rule"]
             for n in range(1, 9)]
    assert rules == ["share_link", "store", "exclusive_guide", "store", "none",
                     "share_link", "share_link", "store"]


async def test_bulk_applies_a_held_refund_like_the_per_order_path(stack: Stack) -> None:
    commerce = stack.runtime.services.commerce
    tenant = stack.tenant()
    _, link = await stack.admin("/links", method="POST", json={"guide": "lina", "title": "t"})
    for prefix in ("ONE-", "BULK-"):
        await commerce.orders.refunded(tenant, RefundEvent(f"{prefix}H", f"{prefix}R", NOW,
                                                           (("SKU1", 100),)))
    order = PaidOrder("ONE-H", NOW, CustomerRef("wmH"), link["token"], "S01",
                      (Item("SKU1", "", 1000),))
    outcome = await commerce.orders.paid(tenant, order, resolve_remote=False)
    assert outcome.body["refunds_applied"] == ["ONE-R"]
    result = await bulk.record_many(commerce.db, tenant, [replace(order, order_no="BULK-H")],
                                    commerce.clock)
    assert (result.recorded, result.refunds_applied) == (1, ["BULK-R"])
    _, one = await stack.admin("/orders/ONE-H")
    _, many = await stack.admin("/orders/BULK-H")
    assert [r["clawback_fen"] for r in many["refunds"]] == [r["clawback_fen"]
                                                           for r in one["refunds"]] == [3]
    assert [(e["kind"], e["amount_fen"]) for e in many["ledger"]] == [
        (e["kind"], e["amount_fen"]) for e in one["ledger"]] == [("earn", 30), ("clawback", -3)]
