"""POST /orders/{tenant}: HMAC, schema, size limit, idempotency and held refunds."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone

import pytest

from guidebot.commerce.signature import sign
from guidebot.events import INTERNAL_PREFIX, decode_internal
from tests.support.commerce import (
    paid,
    post_order,
    post_settled,
    refunded,
    signed_visit,
)
from tests.support.stack import Stack


async def _ledger(stack: Stack) -> list[tuple[str, str, int]]:
    from guidebot.db.repo import commerce_ledger

    async with stack.runtime.services.db.read() as s:
        rows = await commerce_ledger.entries(s, tenant="acme")
    return [(e.kind, e.guide, e.amount_fen) for e in rows]


async def _order_exists(stack: Stack, order_no: str) -> bool:
    return (await stack.admin(f"/orders/{order_no}"))[0] == 200


async def _customer_with_guide(stack: Stack, customer: str) -> None:
    """A share-link touch so the order earns commission for lina."""
    status, link = await stack.admin("/links", method="POST",
                                     json={"guide": "lina", "sku": "SKU1", "title": "Lipstick"})
    assert status == 201, link
    async with stack.http.get(f"{stack.bot_url}/t/{link['token']}",
                              params=signed_visit(stack, link["token"],
                                                  external_userid=customer)) as resp:
        assert resp.status == 204


async def test_missing_signature_is_401_and_nothing_stored(stack: Stack) -> None:
    status, body = await post_order(stack, paid("O-UNSIGNED"), unsigned=True)
    assert status == 401 and "Signature" in body["error"]
    assert not await _order_exists(stack, "O-UNSIGNED")


@pytest.mark.parametrize("forge", ["wrong-secret", "tampered-body", "bad-format", "other-tenant"])
async def test_forged_signature_is_401_and_nothing_stored(stack: Stack, forge: str) -> None:
    event = paid("O-FORGED")
    raw = json.dumps(event).encode()
    signature = {
        "wrong-secret": sign("not-the-secret", raw),
        "tampered-body": sign(stack.tenant().order_secret, raw.replace(b"19900", b"99900")),
        "bad-format": sign(stack.tenant().order_secret, raw).removeprefix("sha256="),
        "other-tenant": sign("beta-has-no-order-secret", raw),
    }[forge]
    status, _ = await post_order(stack, raw, signature=signature)
    assert status == 401
    assert not await _order_exists(stack, "O-FORGED")
    assert await _ledger(stack) == []


async def test_tenant_without_order_secret_refuses_everything(stack: Stack) -> None:
    raw = json.dumps(paid("O-BETA")).encode()
    status, _ = await post_order(stack, raw, tenant="beta", secret="")
    assert status == 401


async def test_replayed_order_is_200_without_a_second_entry(stack: Stack) -> None:
    await _customer_with_guide(stack, "wmREPLAY")
    event = paid("O-REPLAY", customer="wmREPLAY")
    assert await post_order(stack, event) == (202, {"status": "accepted",
                                                    "order_no": "O-REPLAY"})
    recorded = {"status": "recorded", "order_no": "O-REPLAY", "rule": "share_link",
                "guide": "lina", "commission_fen": 597, "refunds_applied": []}
    assert await post_settled(stack, event) == (200, recorded)
    for _ in range(3):
        assert await post_order(stack, event) == (200, recorded)  # the stored result
    assert await _ledger(stack) == [("earn", "lina", 597)]


async def test_replayed_refund_is_200_without_a_second_clawback(stack: Stack) -> None:
    await _customer_with_guide(stack, "wmREFUND")
    await post_settled(stack, paid("O-R", customer="wmREFUND"))
    refund = refunded("O-R", "R-1", [{"sku": "SKU1", "amount_fen": 9900}])
    status, applied = await post_settled(stack, refund)
    assert (status, applied["status"], applied["clawback_fen"]) == (200, "applied", 297)
    assert await post_order(stack, refund) == (200, applied)
    await stack.runtime.drain()
    assert await _ledger(stack) == [("earn", "lina", 597), ("clawback", "lina", -297)]


async def test_refund_before_its_order_is_held_then_applied(stack: Stack) -> None:
    await _customer_with_guide(stack, "wmEARLY")
    refund = refunded("O-LATE", "R-EARLY", [{"sku": "SKU1", "amount_fen": 19900}])
    assert (await post_order(stack, refund))[0] == 202
    assert await post_settled(stack, refund) == (200, {"status": "held", "refund_no": "R-EARLY",
                                                       "order_no": "O-LATE"})
    assert await _ledger(stack) == []
    status, body = await post_settled(stack, paid("O-LATE", customer="wmEARLY"))
    assert status == 200 and body["refunds_applied"] == ["R-EARLY"]
    assert await _ledger(stack) == [("earn", "lina", 597), ("clawback", "lina", -597)]
    _, order = await stack.admin("/orders/O-LATE")
    assert [r["status"] for r in order["refunds"]] == ["applied"]
    status, body = await post_order(stack, refund)  # the stored result is now the clawback
    assert (status, body["status"], body["clawback_fen"]) == (200, "applied", 597)


async def test_refund_posted_before_its_order_is_attributed_claws_back(stack: Stack) -> None:
    """Order and refund accepted back to back, attributed in one batch: the refund is held
    inside the batch and applied when the order is recorded."""
    await _customer_with_guide(stack, "wmQUICK")
    assert (await post_order(stack, paid("O-QUICK", customer="wmQUICK")))[0] == 202
    refund = refunded("O-QUICK", "R-QUICK", [{"sku": "SKU1", "amount_fen": 9900}])
    assert (await post_order(stack, refund))[0] == 202
    status, body = await post_settled(stack, refund)
    assert (status, body["status"], body["clawback_fen"]) == (200, "applied", 297)
    assert await _ledger(stack) == [("earn", "lina", 597), ("clawback", "lina", -297)]


async def test_concurrent_orders_and_refunds_are_each_recorded_once(stack: Stack) -> None:
    await _customer_with_guide(stack, "wmMANY")
    orders = [paid(f"O-MANY-{n}", customer="wmMANY") for n in range(40)]
    refunds = [refunded(f"O-MANY-{n}", f"R-MANY-{n}", [{"sku": "SKU1", "amount_fen": 9900}])
               for n in range(0, 40, 4)]
    answers = await asyncio.gather(*(post_order(stack, e) for e in [*orders, *refunds,
                                                                     *orders[:5]]))
    assert {status for status, _ in answers} <= {200, 202}
    await stack.runtime.drain()
    ledger = await _ledger(stack)
    assert sorted(ledger) == sorted([("earn", "lina", 597)] * 40
                                    + [("clawback", "lina", -297)] * 10)
    for order in orders:
        status, body = await post_order(stack, order)
        assert (status, body["status"], body["guide"]) == (200, "recorded", "lina")


async def test_order_no_reused_with_another_body_is_409_with_what_is_stored(
        stack: Stack) -> None:
    first = paid("O-TWICE", customer="wmTWICE")
    assert (await post_settled(stack, first))[1]["status"] == "recorded"
    other = paid("O-TWICE", customer="wmTWICE",
                 items=[{"sku": "SKU1", "quantity": 1, "amount_fen": 99999900}])
    status, body = await post_order(stack, other)
    assert status == 409 and body["field"] == "order_no"
    assert body["stored"]["items"][0]["amount_fen"] == 19900
    assert body["result"]["status"] == "recorded"
    _, order = await stack.admin("/orders/O-TWICE")
    assert order["amount_fen"] == 19900
    same_instant = dict(first, paid_at=datetime.fromisoformat(first["paid_at"]).astimezone(
        timezone(timedelta(hours=8))).isoformat())  # the same body, written another way
    assert (await post_order(stack, same_instant))[0] == 200


async def test_refund_no_reused_with_another_body_is_409(stack: Stack) -> None:
    await post_settled(stack, paid("O-RT", customer="wmRT"))
    refund = refunded("O-RT", "R-TWICE", [{"sku": "SKU1", "amount_fen": 100}])
    await post_settled(stack, refund)
    status, body = await post_order(stack, dict(refund, items=[{"sku": "SKU1",
                                                                "amount_fen": 19900}]))
    assert status == 409 and body["field"] == "refund_no"
    assert body["stored"]["items"] == [{"sku": "SKU1", "amount_fen": 100}]
    _, order = await stack.admin("/orders/O-RT")
    assert [r["amount_fen"] for r in order["refunds"]] == [100]


@pytest.mark.parametrize(("mutate", "field", "reason"), [
    (lambda e: e.pop("order_no"), "order_no", "is required"),
    (lambda e: e.update(type="order.shipped"), "type", "must be order.paid or order.refunded"),
    (lambda e: e.update(paid_at="2026-11-20T10:00:00"), "paid_at", "must include a UTC offset"),
    (lambda e: e.update(paid_at="yesterday"), "paid_at", "must be an ISO 8601 time"),
    (lambda e: e.update(items=[]), "items", "must be a non-empty array"),
    (lambda e: e["items"][0].update(amount_fen=1.5), "items[0].amount_fen", "must be an integer"),
    (lambda e: e["items"][0].update(amount_fen=-1), "items[0].amount_fen", "must be an integer"),
    (lambda e: e["items"][0].pop("sku"), "items[0].sku", "is required"),
    (lambda e: e.update(customer="wm1"), "customer", "must be an object"),
    (lambda e: e["items"][0].update(amount_fen=10**12 + 1), "items[0].amount_fen",
     "must be an integer from 0 to 1000000000000"),
    (lambda e: e["items"][0].update(quantity=0), "items[0].quantity", "must be an integer"),
    (lambda e: e["items"][0].update(quantity=10**9), "items[0].quantity", "must be an integer"),
    (lambda e: e.update(paid_at="1970-01-01T00:00:00+00:00"), "paid_at", "must be between"),
    (lambda e: e.update(paid_at="9999-12-31T23:59:59+08:00"), "paid_at", "must be between"),
    (lambda e: e.update(order_no="O" * 65), "order_no", "must be at most 64 characters"),
    (lambda e: e.update(order_no=12345), "order_no", "must be a string"),
    (lambda e: e.update(customer={"unionid": "u" * 129}), "customer.unionid",
     "must be at most 128 characters"),
    (lambda e: e.update(items=[e["items"][0]] * 501), "items", "at most 500 items"),
])
async def test_schema_errors_name_field_and_reason(stack: Stack, mutate, field: str,  # type: ignore[no-untyped-def]
                                                   reason: str) -> None:
    event = paid("O-BAD")
    mutate(event)
    status, body = await post_order(stack, event)
    assert status == 400
    assert body["field"] == field and body["reason"].startswith(reason)
    assert not await _order_exists(stack, "O-BAD")


@pytest.mark.parametrize("raw", [b"<xml/>", b"\xff\xfe{}", b"[" * 100_000 + b"]" * 100_000,
                                 b'{"type": "order.refunded", "order_no": "O", "refund_no": '
                                 b'"R", "refunded_at": "2026-11-20T10:00:00+08:00", "items": '
                                 b'[{"sku": "S", "amount_fen": 0}]}', b"[]"])
async def test_bad_bodies_are_400_naming_the_field(stack: Stack, raw: bytes) -> None:
    status, body = await post_order(stack, raw)
    assert status == 400 and body["field"] in ("(body)", "items[0].amount_fen")


async def test_ten_megabyte_body_is_413_and_nothing_stored(stack: Stack) -> None:
    event = paid("O-HUGE")
    event["padding"] = "x" * (10 * 1024 * 1024)
    status, body = await post_order(stack, event)
    assert status == 413
    assert not await _order_exists(stack, "O-HUGE")


async def test_ten_megabyte_chunked_body_is_413(stack: Stack) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(160):
            yield b"x" * 65536

    async with stack.http.post(f"{stack.bot_url}/orders/acme", data=chunks(),
                               headers={"X-Guidebot-Signature": "sha256=00"}) as resp:
        assert resp.status == 413


async def test_unknown_tenant_is_404(stack: Stack) -> None:
    status, _ = await post_order(stack, paid("O-X"), tenant="nosuch", secret="x")
    assert status == 404


async def test_order_events_are_staged_in_the_inbox_and_handled_once(stack: Stack) -> None:

    await _customer_with_guide(stack, "wmEVENTS")
    await post_settled(stack, paid("O-EV", customer="wmEVENTS"))
    await post_settled(stack, paid("O-EV", customer="wmEVENTS"))
    await post_settled(stack, refunded("O-EV", "R-EV", [{"sku": "SKU1", "amount_fen": 100}]))
    await stack.runtime.drain()
    rows = sorted((r for r in await stack.inbox_rows() if r.payload.startswith(INTERNAL_PREFIX)
                   and "CardOpened" not in r.payload),  # the share link's visit (互动雷达)
                  key=lambda r: r.id)
    seen = [(type(e).__name__, e.order_no, e.guide, e.external_userid)
            for e in (decode_internal(r.payload) for r in rows)]
    assert seen == [("OrderPaid", "O-EV", "lina", "wmEVENTS"),
                    ("OrderRefunded", "O-EV", "lina", "wmEVENTS")]
    assert [(r.outcome, r.attempts) for r in rows] == [("on_order_paid", 1), ("unhandled", 1)]
    assert all(r.processed_at is not None for r in rows)
