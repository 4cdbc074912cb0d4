"""Tracked links: page shape, card JSON, unguessable tokens, the visit beacon."""

from __future__ import annotations

import math

from tests.support.commerce import signed_visit
from tests.support.stack import Stack


async def _touches(stack: Stack) -> list[tuple[str | None, str, int, str, str]]:
    from sqlalchemy import select

    from guidebot.db.models_commerce import Touch

    async with stack.runtime.services.db.read() as s:
        rows = (await s.execute(select(Touch).order_by(Touch.id))).scalars()  # type: ignore[arg-type]
        return [(t.external_userid, t.guide, t.dur_s, t.sku, t.kind) for t in rows]


async def test_link_page_card_and_token(stack: Stack) -> None:
    status, link = await stack.admin("/links", method="POST", json={
        "guide": "lina", "sku": "SKU9", "page": "pages/goods/detail.html?id=9",
        "campaign": "double11", "title": "Lipstick"})
    assert status == 201
    token = link["token"]
    assert len(token) * math.log2(64) >= 64  # URL-safe base64: 6 bits a character
    assert link["page"] == f"pages/goods/detail.html?id=9&t={token}"
    assert link["page"].split("?")[0].endswith(".html") and len(link["page"].encode()) <= 128
    assert link["card"] == {"msgtype": "miniprogram", "miniprogram": {
        "title": "Lipstick", "pic_media_id": "", "appid": stack.tenant().miniprogram_appid,
        "page": link["page"]}}
    tokens = {(await stack.admin("/links", method="POST",
                                 json={"guide": "lina", "title": "x"}))[1]["token"]
              for _ in range(20)}
    assert len(tokens) == 20 and token not in tokens


async def test_link_validation(stack: Stack) -> None:
    cases = [({"title": "x"}, "guide"),
             ({"guide": "lina", "title": "x", "page": "pages/goods/detail"}, ".html"),
             ({"guide": "lina", "title": "x", "page": "p/" + "a" * 120 + ".html"}, "128 bytes"),
             ({"guide": "lina", "title": "长" * 30}, "64 bytes")]
    for body, needle in cases:
        status, answer = await stack.admin("/links", method="POST", json=body)
        assert status == 400 and needle in answer["error"], (body, answer)


async def test_catalog_sku_fills_title_and_page(stack: Stack) -> None:
    catalog = stack.runtime.services.commerce.catalog
    product = next(iter(catalog.products.values()))
    status, link = await stack.admin("/links", method="POST",
                                     json={"guide": "lina", "sku": product.sku})
    assert status == 201
    assert link["card"]["miniprogram"]["title"] == product.name
    assert link["page"].startswith(product.page.split("?")[0])


async def test_visit_beacon_records_touches(stack: Stack) -> None:
    _, link = await stack.admin("/links", method="POST",
                                json={"guide": "wangfang", "sku": "SKU2", "title": "x",
                                      "customer": "wmKNOWN"})
    url = f"{stack.bot_url}/t/{link['token']}"
    signed = signed_visit(stack, link["token"], external_userid="wmV1")
    for params in ({**signed, "dur": "42", "sku": "SKU3"}, {}, {"dur": "999999"},
                   {"external_userid": "wmUNSIGNED"}):
        async with stack.http.get(url, params=params) as resp:
            assert resp.status == 204
    async with stack.http.get(url, params={"dur": "ten"}) as resp:
        assert resp.status == 400
    async with stack.http.get(f"{stack.bot_url}/t/unknown-token") as resp:
        assert resp.status == 404
    assert await _touches(stack) == [("wmV1", "wangfang", 42, "SKU3", "visit"),
                                     (None, "wangfang", 0, "SKU2", "click"),
                                     (None, "wangfang", 86400, "SKU2", "click"),
                                     (None, "wangfang", 0, "SKU2", "click")]


async def test_message_attachments_with_a_sku_get_a_tracked_page(stack: Stack) -> None:
    links = stack.runtime.services.commerce.links
    attachments = [{"type": "image", "media_id": "M1"},
                   {"type": "miniprogram", "title": "t", "page": "pages/goods/detail.html?id=1",
                    "sku": "SKU1"},
                   {"type": "miniprogram", "title": "home", "page": "pages/index/index.html"}]
    first = await links.track_attachments(stack.tenant(), "lina", attachments, "sop:new:1")
    again = await links.track_attachments(stack.tenant(), "lina", attachments, "sop:new:1")
    other = await links.track_attachments(stack.tenant(), "wangfang", attachments, "sop:new:1")
    assert first[0] == attachments[0] and first[2] == attachments[2]
    page = first[1]["page"]
    assert page.startswith("pages/goods/detail.html?id=1&t=") and again[1]["page"] == page
    assert other[1]["page"] != page
    token = page.rsplit("t=", 1)[1]
    async with stack.http.get(f"{stack.bot_url}/t/{token}",
                              params=signed_visit(stack, token, external_userid="wmSOP")) as resp:
        assert resp.status == 204
    assert await _touches(stack) == [("wmSOP", "lina", 0, "SKU1", "visit")]
