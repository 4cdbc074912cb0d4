"""The demo's commerce chapter: a shared card, a visit, a signed order, a partial refund and
the month's statement — all through guidebot's real HTTP endpoints."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from guidebot.commerce import periods
from guidebot.commerce.links import sign_visit
from guidebot.commerce.signature import HEADER, sign

SKU = "SKU-LIPSTICK-01"
SECOND_SKU = "SKU-SCARF-03"
SETTLE_TRIES = 200  # 10 s: the intake attributes within milliseconds


async def _request(http: aiohttp.ClientSession, method: str, url: str,
                   **kw: Any) -> tuple[int, Any]:
    async with http.request(method, url, **kw) as resp:
        text = await resp.text()
        return resp.status, (json.loads(text) if text else None)


def _marks(ctx: Any, customer: str) -> list[str]:
    """The names of the tags guidebot marked on the customer so far (sandbox mark_tag)."""
    state = ctx.sandbox.state(ctx.tenant)
    names = {t["id"]: t["name"] for g in state["tag_groups"] for t in g["tag"]}
    return [names.get(tag, tag) for c in ctx.sandbox.calls(tenant=ctx.tenant,
                                                           path="externalcontact/mark_tag")
            if not c["errcode"] and c["body"]["external_userid"] == customer
            for tag in c["body"].get("add_tag") or ()]


async def story(ctx: Any) -> None:
    from guidebot.app import RUNTIME

    tenant = ctx.settings.tenant(ctx.tenant)
    customer = ctx.customers[0]
    guide, who = customer["guide"], customer["external_userid"]
    admin = {"Authorization": f"Bearer {tenant.admin_token}"}
    api = f"{ctx.bot_url}/api/v1/{ctx.tenant}"
    async with aiohttp.ClientSession() as http:
        _, link = await _request(http, "POST", f"{api}/links", headers=admin,
                                 json={"guide": guide, "sku": SKU, "campaign": "double11"})
        ctx.out(f"Commerce: {guide} shares a tracked card for {SKU}: page {link['page']!r}")
        marks_before = len(_marks(ctx, who))
        visit = {"external_userid": who, "ts": str(int(datetime.now(UTC).timestamp()))}
        visit["sig"] = sign_visit(tenant.order_secret, link["token"], visit)  # the store backend
        await _request(http, "GET", f"{ctx.bot_url}/t/{link['token']}",
                       params={**visit, "dur": "95"})
        ctx.out(f"  {customer['name']} opens it and stays 95 s (GET /t/{{token}}, signed by the "
                f"store backend → 204)")
        await ctx.app[RUNTIME].drain()
        told = [m for m in ctx.sandbox.state(ctx.tenant)["app_messages"]
                if m["userid"] == guide and m["msgtype"] == "text"]
        if told:
            ctx.out(f"  {guide} is told at once (互动雷达, an app message): "
                    f"{str(told[-1]['content']['content']).splitlines()[0]}")
        tagged = _marks(ctx, who)[marks_before:]
        if tagged:
            ctx.out(f"  and {customer['name']} is tagged {'、'.join(tagged)} on {guide}'s "
                    "relation (自动打标签: content_library/auto_tags.toml, mark_tag)")
        order = _order(tenant.tz, who, link["token"])
        status, paid = await _post_signed(http, ctx, tenant.order_secret, order)
        ctx.out(f"  the store posts order {order['order_no']} (HMAC-signed) → {status}: "
                f"rule {paid['rule']}, guide {paid['guide']}, commission "
                f"{_yuan(paid['commission_fen'])}")
        refund = {"type": "order.refunded", "order_no": order["order_no"], "refund_no": "R-DEMO-1",
                  "refunded_at": datetime.now(UTC).isoformat(),
                  "items": [{"sku": SECOND_SKU, "amount_fen": 30000}]}
        status, back = await _post_signed(http, ctx, tenant.order_secret, refund)
        ctx.out(f"  a partial refund of {_yuan(30000)} on the scarf → {status}: clawback "
                f"{_yuan(back['clawback_fen'])}")
        status, replay = await _post_signed(http, ctx, tenant.order_secret, refund)
        ctx.out(f"  the store retries the refund → {status} {replay['status']} (the stored "
                f"result; no second entry)")
        period = periods.of(datetime.now(UTC), tenant.tz)
        _, body = await _request(http, "GET", f"{api}/commissions/statements",
                                 params={"period": period}, headers=admin)
        _, view = await _request(http, "GET", f"{api}/customers/{who}", headers=admin)
    ctx.out(f"  statements for {period} ({tenant.timezone}):")
    for row in body["statements"]:
        ctx.out(f"    {row['guide']}: earned {_yuan(row['earned_fen'])}, clawback "
                f"{_yuan(row['clawback_fen'])}, net {_yuan(row['net_fen'])}, "
                f"orders {row['orders']}")
    score = view["propensity"]
    ctx.out(f"  {customer['name']}: purchase-propensity {score['score']}/100, top categories "
            f"{', '.join(score['top_categories']) or '-'}")
    ctx.out(f"  audit one order: GET /api/v1/{ctx.tenant}/orders/{order['order_no']}; CSV: "
            f"guidebot commissions statement --tenant {ctx.tenant} --period {period} --csv -")


def _order(tz: Any, external_userid: str, token: str) -> dict[str, Any]:
    paid_at = datetime.now(UTC) - timedelta(seconds=1)  # just now: after the add
    return {"type": "order.paid", "order_no": "O-DEMO-1",
            "paid_at": paid_at.astimezone(tz).isoformat(),
            "customer": {"external_userid": external_userid}, "tracking": token,
            "store_id": "S01",
            "items": [{"sku": SKU, "category": "beauty", "quantity": 1, "amount_fen": 29900},
                      {"sku": SECOND_SKU, "category": "accessories", "quantity": 1,
                       "amount_fen": 89900}]}


async def _post_signed(http: aiohttp.ClientSession, ctx: Any, secret: str,
                       event: dict[str, Any]) -> tuple[int, Any]:
    """The first answer's status (202: stored, attributed right after) with the stored
    result, which the same body posted again answers once it is attributed."""
    raw = json.dumps(event, ensure_ascii=False).encode()
    headers = {HEADER: sign(secret, raw), "Content-Type": "application/json"}
    url = f"{ctx.bot_url}/orders/{ctx.tenant}"
    status, body = await _request(http, "POST", url, data=raw, headers=headers)
    for _ in range(SETTLE_TRIES):
        if not isinstance(body, dict) or body.get("status") != "accepted":
            break
        await asyncio.sleep(0.05)
        _, body = await _request(http, "POST", url, data=raw, headers=headers)
    return status, body


def _yuan(fen: int) -> str:
    return f"¥{fen / 100:.2f}"
