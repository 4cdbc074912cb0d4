"""POST /orders/{tenant}: HMAC, schema, size limit, idempotency and held refunds."""

from __future__ import annotations

import json

import pytest

from guidebot.commerce.signature import sign
from guidebot.events import INTERNAL_PREFIX, decode_internal
from tests.support.commerce import paid, post_order, refunded
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
                              params={"external_userid": customer}) as resp:
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
    first = await post_order(stack, event)
    assert first == (200, {"status": "recorded", "order_no": "O-REPLAY", "rule": "share_link",
                           "guide": "lina", "commission_fen": 597, "refunds_applied": []})
    for _ in range(3):
        status, body = await post_order(stack, event)
        assert status == 200 and body["status"] == "duplicate"
    assert await _ledger(stack) == [("earn", "lina", 597)]


async def test_replayed_refund_is_200_without_a_second_clawback(stack: Stack) -> None:
    await _customer_with_guide(stack, "wmREFUND")
    await post_order(stack, paid("O-R", customer="wmREFUND"))
    refund = refunded("O-R", "R-1", [{"sku": "SKU1", "amount_fen": 9900}])
    assert (await post_order(stack, refund))[1]["clawback_fen"] == 297
    status, body = await post_order(stack, refund)
    assert status == 200 and body["status"] == "duplicate"
    assert await _ledger(stack) == [("earn", "lina", 597), ("clawback", "lina", -297)]


async def test_refund_before_its_order_is_held_then_applied(stack: Stack) -> None:
    await _customer_with_guide(stack, "wmEARLY")
    refund = refunded("O-LATE", "R-EARLY", [{"sku": "SKU1", "amount_fen": 19900}])
    status, body = await post_order(stack, refund)
    assert (status, body["status"]) == (202, "held")
    assert await _ledger(stack) == []
    assert (await post_order(stack, refund))[1]["status"] == "duplicate"
    status, body = await post_order(stack, paid("O-LATE", customer="wmEARLY"))
    assert status == 200 and body["refunds_applied"] == ["R-EARLY"]
    assert await _ledger(stack) == [("earn", "lina", 597), ("clawback", "lina", -597)]
    _, order = await stack.admin("/orders/O-LATE")
    assert [r["status"] for r in order["refunds"]] == ["applied"]


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
])
async def test_schema_errors_name_field_and_reason(stack: Stack, mutate, field: str,  # type: ignore[no-untyped-def]
                                                   reason: str) -> None:
    event = paid("O-BAD")
    mutate(event)
    status, body = await post_order(stack, event)
    assert status == 400
    assert body["field"] == field and body["reason"].startswith(reason)
    assert not await _order_exists(stack, "O-BAD")


async def test_non_json_body_is_400(stack: Stack) -> None:
    status, body = await post_order(stack, b"<xml/>")
    assert status == 400 and body["field"] == "(body)"


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


async def test_order_events_are_stored_in_the_inbox_once_and_handled(stack: Stack) -> None:
    await _customer_with_guide(stack, "wmEVENTS")
    await post_order(stack, paid("O-EV", customer="wmEVENTS"))
    await post_order(stack, paid("O-EV", customer="wmEVENTS"))
    await post_order(stack, refunded("O-EV", "R-EV", [{"sku": "SKU1", "amount_fen": 100}]))
    await stack.runtime.drain()
    rows = await stack.inbox_rows()
    internal = sorted((r for r in rows if r.payload.startswith(INTERNAL_PREFIX)),
                      key=lambda r: r.id)
    seen = [decode_internal(r.payload) for r in internal]
    kinds = [(type(e).__name__, getattr(e, "order_no", ""), getattr(e, "guide", ""),
              getattr(e, "external_userid", "")) for e in seen]
    assert kinds == [("OrderPaid", "O-EV", "lina", "wmEVENTS"),
                     ("OrderRefunded", "O-EV", "lina", "wmEVENTS")]
    assert [r.outcome for r in internal] == ["on_order_paid", "unhandled"]
    assert all(r.processed_at is not None for r in internal)
