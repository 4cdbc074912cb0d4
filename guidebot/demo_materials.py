"""The demo's material-centre chapter: a guide contributes a photo with copy from the app
chat, HQ tags the product and approves it as A, another guide sends it to a customer, the
contributor earns points, and the customer's order shows up under the material — all through
the sandbox's app messages and guidebot's real HTTP endpoints."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from guidebot.commerce import periods
from guidebot.commerce.links import sign_visit
from guidebot.commerce.signature import HEADER, sign

PICTURE = "materials/pictures/scarf_oat.png"
SKU = "SKU-SCARF-03"
COPY = "顾客试戴燕麦色围巾，法式随意绕一圈，通勤大衣立刻温柔起来。"
MSG_IDS = ("7700000000000000001", "7700000000000000002")  # fixed: the same story every run


async def _call(http: aiohttp.ClientSession, method: str, url: str,
                **kw: Any) -> tuple[int, Any]:
    async with http.request(method, url, **kw) as resp:
        text = await resp.text()
        return resp.status, (json.loads(text) if text else None)


def _yuan(fen: int) -> str:
    return f"¥{fen / 100:.2f}"


async def story(ctx: Any) -> None:
    from guidebot.app import RUNTIME

    tenant = ctx.settings.tenant(ctx.tenant)
    drain = ctx.app[RUNTIME].drain
    guides = [c["guide"] for c in ctx.customers]
    author = guides[0]
    sender = next(g for g in guides if g != author)
    customer = next(c for c in ctx.customers if c["guide"] == sender)
    admin = {"Authorization": f"Bearer {tenant.admin_token}"}
    api = f"{ctx.bot_url}/api/v1/{ctx.tenant}"
    simulate = f"{ctx.sandbox_url}/_sandbox/{ctx.tenant}/simulate/app_message"
    picture = (ctx.settings.content_library / PICTURE).read_bytes()
    async with aiohttp.ClientSession() as http:
        await _call(http, "POST", simulate, json={
            "userid": author, "msgtype": "image", "msg_id": MSG_IDS[0],
            "image_base64": base64.b64encode(picture).decode()})
        await _call(http, "POST", simulate, json={
            "userid": author, "msgtype": "text", "msg_id": MSG_IDS[1], "content": COPY})
        await drain()
        _, queue = await _call(http, "GET", f"{api}/materials", headers=admin)
        material = queue["materials"][0]
        ctx.out(f"Materials: {author} sends the app a photo, then the copy; guidebot fetches "
                f"the photo (media/get), keeps it and files one submission {material['id']} "
                f"({len(material['pictures'])} picture, status {material['status']})")
        ctx.out(f"  {author} is told: {_last_text(ctx, author)}")
        one = f"{api}/materials/{material['id']}"
        await _call(http, "PUT", one, headers=admin, json={
            "title": "燕麦围巾通勤系法", "text": COPY, "skus": [SKU], "occasions": ["通勤"]})
        _, approved = await _call(http, "POST", f"{one}/approve", headers=admin,
                                  json={"grade": "A", "reviewer": "hq"})
        ctx.out(f"  HQ tags {SKU} (version {approved['version']}) and approves it as "
                f"{approved['grade']}; {author} is told: {_last_text(ctx, author)}")
        status, used = await _call(http, "POST", f"{one}/uses", headers=admin, json={
            "guide": sender, "channel": "send", "external_userid": customer["external_userid"],
            "key": "demo-use-1"})
        kinds = ", ".join(a["msgtype"] for a in used["attachments"])
        ctx.out(f"  {sender} sends it to {customer['name']} → {status}: text + {kinds} (the "
                f"card carries {sender}'s tracking token); {author} earns {used['points']} "
                "points")
        _, again = await _call(http, "POST", f"{one}/uses", headers=admin, json={
            "guide": sender, "channel": "moment", "key": "demo-use-2"})
        ctx.out(f"  {sender} posts it to moments the same day → {again['points']} more points "
                "(once per guide, material and day)")
        token = used["token"]
        visit = {"external_userid": customer["external_userid"],
                 "ts": str(int(datetime.now(UTC).timestamp()))}
        visit["sig"] = sign_visit(tenant.order_secret, token, visit)
        await _call(http, "GET", f"{ctx.bot_url}/t/{token}", params=visit)
        order = _order(tenant.tz, customer["external_userid"], token)
        body = json.dumps(order, ensure_ascii=False).encode()
        status, paid = await _call(http, "POST", f"{ctx.bot_url}/orders/{ctx.tenant}",
                                   data=body, headers={
                                       HEADER: sign(tenant.order_secret, body),
                                       "Content-Type": "application/json"})
        await drain()
        _, stats = await _call(http, "GET", f"{one}/stats", headers=admin)
        period = periods.of(datetime.now(UTC), tenant.tz)
        _, board = await _call(http, "GET", f"{api}/points/leaderboard", headers=admin,
                               params={"period": period})
    ctx.out(f"  {customer['name']} opens the card and orders {order['order_no']} "
            f"({_yuan(order['items'][0]['amount_fen'])}) → {status}")
    ctx.out(f"  under the material: {stats['uses']} uses, {stats['customers_reached']} "
            f"customer reached, {stats['card_opens']} card open, {stats['orders']} order, "
            f"GMV {_yuan(stats['gmv_fen'])}")
    for row in board["guides"]:
        ctx.out(f"  points {period}: #{row['rank']} {row['guide']} {row['points']} "
                f"({row['uses']} counted uses)")
    ctx.out(f"  review queue: /console/{ctx.tenant}/materials; export: guidebot points "
            f"export --tenant {ctx.tenant} --period {period} --csv -")


def _last_text(ctx: Any, guide: str) -> str:
    sent = [m for m in ctx.sandbox.state(ctx.tenant)["app_messages"]
            if m["userid"] == guide and m["msgtype"] == "text"]
    return str(sent[-1]["content"]["content"]).splitlines()[0] if sent else "(nothing)"


def _order(tz: Any, external_userid: str, token: str) -> dict[str, Any]:
    paid_at = datetime.now(UTC) - timedelta(minutes=1)
    return {"type": "order.paid", "order_no": "O-DEMO-MAT-1",
            "paid_at": paid_at.astimezone(tz).isoformat(),
            "customer": {"external_userid": external_userid}, "tracking": token,
            "store_id": "S02", "items": [{"sku": SKU, "category": "accessories",
                                          "quantity": 1, "amount_fen": 89900}]}
