"""Statements, settlement, adjustments and customer value over the admin API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from guidebot.commerce import periods
from tests.support.commerce import paid, post_settled, refunded
from tests.support.stack import Stack


def _period(stack: Stack) -> str:
    return periods.of(datetime.now(UTC), stack.tenant().tz)


async def _sell(stack: Stack, guide: str, customer: str | None, order_no: str,
                amount: int = 19900, paid_at: datetime | None = None) -> None:
    status, link = await stack.admin("/links", method="POST",
                                     json={"guide": guide, "title": "Card"})
    assert status == 201
    event = paid(order_no, customer=customer, tracking=link["token"], paid_at=paid_at,
                 items=[{"sku": "SKU1", "category": "beauty", "amount_fen": amount}])
    assert (await post_settled(stack, event))[0] == 200


async def _value(stack: Stack) -> tuple[dict[str, tuple[int, int]], ...]:
    """The period's value report: {guide: (first, repurchases)}, {store: (first, repurchases)}."""
    status, report = await stack.admin(f"/commerce/value?period={_period(stack)}")
    assert status == 200
    assert report["period"] == _period(stack)
    return tuple({row[key]: (row["first_purchases"], row["repurchases"]) for row in report[part]}
                 for part, key in (("guides", "guide"), ("stores", "store")))


async def test_statement_per_guide_and_csv(stack: Stack) -> None:
    await _sell(stack, "lina", "wmA", "O1")
    await _sell(stack, "lina", "wmB", "O2", amount=10001)
    await _sell(stack, "zhaolei", "wmC", "O3", amount=50)
    await post_settled(stack, refunded("O2", "R2", [{"sku": "SKU1", "amount_fen": 5000}]))
    period = _period(stack)
    status, body = await stack.admin(f"/commissions/statements?period={period}")
    assert status == 200 and body["period"] == period and body["settled"] is False
    assert body["statements"] == [
        {"guide": "lina", "earned_fen": 597 + 300, "clawback_fen": 150, "adjustment_fen": 0,
         "net_fen": 747, "orders": 2},
        {"guide": "zhaolei", "earned_fen": 2, "clawback_fen": 0, "adjustment_fen": 0,
         "net_fen": 2, "orders": 1}]
    async with stack.http.get(
            f"{stack.bot_url}/api/v1/acme/commissions/statements",
            params={"period": period, "format": "csv"},
            headers={"Authorization": "Bearer acme-admin-token"}) as resp:
        csv_text = await resp.text()
    assert csv_text.splitlines() == [
        "period,guide,earned_fen,clawback_fen,adjustment_fen,net_fen,orders",
        f"{period},lina,897,150,0,747,2", f"{period},zhaolei,2,0,0,2,1"]


async def test_statement_requires_a_valid_period_and_auth(stack: Stack) -> None:
    assert (await stack.admin("/commissions/statements?period=2026-13"))[0] == 400
    assert (await stack.admin("/commissions/statements"))[0] == 400
    assert (await stack.admin("/commissions/statements?period=2026-11", token="x"))[0] == 403


async def test_settlement_locks_the_period_and_later_clawbacks_land_in_the_next(
        stack: Stack) -> None:
    await _sell(stack, "lina", "wmS", "O-S")
    period = _period(stack)
    status, body = await stack.admin(f"/commissions/settle?period={period}", method="POST")
    assert status == 200 and body == {"period": period, "settled": True, "net_fen": 597,
                                      "guides": 1}
    assert (await stack.admin(f"/commissions/settle?period={period}", method="POST"))[0] == 409
    await post_settled(stack, refunded("O-S", "R-S", [{"sku": "SKU1", "amount_fen": 19900}]))
    _, locked = await stack.admin(f"/commissions/statements?period={period}")
    assert locked["settled"] is True
    assert locked["statements"] == [{"guide": "lina", "earned_fen": 597, "clawback_fen": 0,
                                     "adjustment_fen": 0, "net_fen": 597, "orders": 1}]
    following = periods.following(period)
    _, later = await stack.admin(f"/commissions/statements?period={following}")
    assert later["statements"] == [{"guide": "lina", "earned_fen": 0, "clawback_fen": 597,
                                    "adjustment_fen": 0, "net_fen": -597, "orders": 0}]
    status, body = await stack.admin(
        f"/commissions/settle?period={periods.following(following)}", method="POST")
    assert status == 400 and "not started" in body["error"]


async def test_adjustments_need_reason_and_operator(stack: Stack) -> None:
    await stack.sandbox.simulate_add_contact("acme", userid="lina")  # lina becomes a guide
    await stack.runtime.drain()
    status, body = await stack.admin("/commissions/adjustments", method="POST",
                                     json={"guide": "lina", "amount_fen": 500})
    assert status == 400
    assert (await stack.admin("/commissions/adjustments", method="POST", json={
        "guide": "lina", "amount_fen": 0, "reason": "x", "operator": "hq"}))[0] == 400
    body = {"guide": "lina", "amount_fen": -250, "reason": "sample returned",
            "operator": "hq-anna", "key": "ADJ-1"}
    status, created = await stack.admin("/commissions/adjustments", method="POST", json=body)
    assert status == 201 and created["amount_fen"] == -250
    assert (await stack.admin("/commissions/adjustments", method="POST", json=body))[0] == 200
    _, statement = await stack.admin(f"/commissions/statements?period={_period(stack)}")
    assert statement["statements"] == [{"guide": "lina", "earned_fen": 0, "clawback_fen": 0,
                                        "adjustment_fen": -250, "net_fen": -250, "orders": 0}]


async def test_order_view_404_and_customer_value(stack: Stack) -> None:
    assert (await stack.admin("/orders/NOPE"))[0] == 404
    await _sell(stack, "lina", "wmV", "O-V1")
    await _sell(stack, "lina", "wmV", "O-V2")
    await _sell(stack, "zhaolei", "wmW", "O-W1")
    assert await _value(stack) == ({"lina": (1, 1), "zhaolei": (1, 0)}, {"S01": (2, 1)})
    status, view = await stack.admin("/customers/wmV")
    assert status == 200
    assert [(o["order_no"], o["purchase"], o["guide"]) for o in view["orders"]] == [
        ("O-V1", "first", "lina"), ("O-V2", "repurchase", "lina")]
    assert view["propensity"]["top_categories"] == ["beauty"]


async def test_customer_value_counts_the_period_against_all_earlier_orders(stack: Stack) -> None:
    start, end = periods.bounds(_period(stack), stack.tenant().tz)
    now = datetime.now(UTC)
    await _sell(stack, "lina", "wmP", "O-P0", paid_at=start - timedelta(days=3))  # earlier month
    await _sell(stack, "lina", "wmP", "O-P1", paid_at=now)  # a repurchase this month
    await _sell(stack, "lina", "wmQ", "O-Q2", paid_at=now)  # the same instant: the lower
    await _sell(stack, "lina", "wmQ", "O-Q1", paid_at=now)  # order number is the first
    await _sell(stack, "zhaolei", None, "O-N1", paid_at=now)  # no customer: a first purchase
    await _sell(stack, "zhaolei", "wmR", "O-R1", paid_at=end + timedelta(days=1))  # next month
    assert await _value(stack) == ({"lina": (1, 2), "zhaolei": (1, 0)}, {"S01": (2, 2)})
    _, view = await stack.admin("/customers/wmQ")
    assert {o["order_no"]: o["purchase"] for o in view["orders"]} == {  # the same verdict
        "O-Q1": "first", "O-Q2": "repurchase"}


async def test_openapi_lists_the_commerce_routes(stack: Stack) -> None:
    async with stack.http.get(f"{stack.bot_url}/api/v1/openapi.json") as resp:
        doc = await resp.json()
    paths = doc["paths"]
    for path in ("/api/v1/{tenant}/links", "/api/v1/{tenant}/orders/{order_no}",
                 "/api/v1/{tenant}/commissions/statements",
                 "/api/v1/{tenant}/commissions/settle"):
        assert path in paths
    customer = paths["/api/v1/{tenant}/customers/{external_userid}"]["get"]
    ref = customer["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    schema = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert {"orders", "propensity"} <= set(schema["properties"])


async def test_an_adjustment_is_refused_with_its_reason_and_a_reused_key_shows_what_it_made(
        stack: Stack) -> None:
    """Each refusal names its field and why: an amount of 0 or beyond ±¥1,000,000 (the
    bounds themselves are allowed), a reason or an operator missing, an unknown guide; a key
    used again with another body is a conflict that shows what the key made, period
    included."""
    await stack.sandbox.simulate_add_contact("acme", userid="lina")  # lina becomes a guide
    await stack.runtime.drain()
    base = {"guide": "lina", "reason": "sample returned", "operator": "hq-anna"}

    async def adjust(**fields: object) -> tuple[int, dict]:
        return await stack.admin("/commissions/adjustments", method="POST",
                                 json={**base, **fields})

    amount = "amount_fen: a non-zero integer within ±100000000"
    both = "reason: reason and operator are both required"
    refused = [await adjust(amount_fen=0), await adjust(amount_fen=100_000_001),
               await adjust(amount_fen=-100_000_001), await adjust(amount_fen=5, operator=" "),
               await adjust(amount_fen=5, reason=" "),
               await adjust(amount_fen=5, guide="nobody")]
    assert [(status, body["error"]) for status, body in refused] == [
        (400, amount), (400, amount), (400, amount), (400, both), (400, both),
        (404, "guide: no guide nobody in this tenant")]
    assert (await adjust(amount_fen=100_000_000, key="MAX"))[0] == 201
    assert (await adjust(amount_fen=-100_000_000, key="MIN"))[0] == 201
    status, first = await adjust(amount_fen=-250, key="ADJ-2")
    assert status == 201
    status, conflict = await adjust(amount_fen=-300, key="ADJ-2")
    assert status == 409
    assert conflict["error"] == "key: 'ADJ-2' was already used with a different body"
    assert conflict["stored"] == {**{k: first[k] for k in conflict["stored"]},
                                  "period": _period(stack), "amount_fen": -250}
    assert set(conflict["stored"]) >= {"guide", "amount_fen", "reason", "operator", "period"}
