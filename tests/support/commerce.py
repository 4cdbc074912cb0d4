"""Signed order events for the commerce scenario tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from guidebot.commerce.signature import HEADER, sign
from tests.support.schema import migrate
from tests.support.stack import Stack

# Property tests on a real database: one migrated database per test, examples kept apart.
DB_PROPERTIES = settings(max_examples=40, deadline=None,
                         suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                HealthCheck.too_slow])


@pytest.fixture
def migrated(db_url: str) -> str:
    migrate(db_url)
    return db_url


def paid(order_no: str, *, paid_at: datetime | None = None, customer: str | None = None,
         unionid: str | None = None, openid: str | None = None, tracking: str | None = None,
         store: str | None = "S01",
         items: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    who = {k: v for k, v in (("external_userid", customer), ("unionid", unionid),
                             ("openid", openid)) if v}
    body: dict[str, Any] = {
        "type": "order.paid", "order_no": order_no,
        "paid_at": (paid_at or datetime.now(UTC)).isoformat(), "customer": who,
        "items": items or [{"sku": "SKU1", "category": "beauty", "quantity": 1,
                            "amount_fen": 19900}]}
    if tracking:
        body["tracking"] = tracking
    if store:
        body["store_id"] = store
    return body


def refunded(order_no: str, refund_no: str, items: list[dict[str, Any]],
             at: datetime | None = None) -> dict[str, Any]:
    return {"type": "order.refunded", "order_no": order_no, "refund_no": refund_no,
            "refunded_at": (at or datetime.now(UTC)).isoformat(), "items": items}


async def post_order(stack: Stack, event: dict[str, Any] | bytes, *, tenant: str = "acme",
                     secret: str | None = None, signature: str | None = None,
                     unsigned: bool = False) -> tuple[int, Any]:
    raw = event if isinstance(event, bytes) else json.dumps(event).encode()
    key = secret if secret is not None else stack.tenant(tenant).order_secret
    headers = {"Content-Type": "application/json"}
    if not unsigned:
        headers[HEADER] = signature if signature is not None else sign(key, raw)
    async with stack.http.post(f"{stack.bot_url}/orders/{tenant}", data=raw,
                               headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def post_settled(stack: Stack, event: dict[str, Any] | bytes,
                       **kw: Any) -> tuple[int, Any]:
    """Post an order event and answer what is stored once it is attributed: an accepted event
    (202, or 200 for one accepted before) is attributed by the intake, its events handled, and
    the same body posted again (which answers the stored result, 200)."""
    status, body = await post_order(stack, event, **kw)
    if not isinstance(body, dict) or body.get("status") != "accepted":
        return status, body
    await stack.runtime.drain()
    return await post_order(stack, event, **kw)


def signed_visit(stack: Stack, token: str, tenant: str = "acme",
                 **query: str) -> dict[str, str]:
    """A visit beacon's query as the store backend signs it (the identity fields, `ts`, `t`)."""
    from guidebot.commerce.links import sign_visit

    query = {"ts": str(int(datetime.now(UTC).timestamp())), **query}
    return {**query, "sig": sign_visit(stack.tenant(tenant).order_secret, token, query)}
