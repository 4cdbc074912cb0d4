"""An SOP step's mini-program card is tracked per guide and step: the 群发 task the sandbox
receives opens a page with t=<token>, the visit is a touch for that guide, and an order
carrying the token is attributed to her — over HTTP, against the sandbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from guidebot.db.repo import commerce_links
from guidebot.sandbox.models import Media
from tests.support.commerce import paid, post_settled, signed_visit
from tests.support.stack import ROOT, Stack, known, library_copy, start_stack

CARD_MESSAGE = '''text = "新品到店，欢迎来看看"

[[attachments]]
type = "miniprogram"
title = "修护精华液 30ml"
appid = "wxbrandstore0001"
pic_media_id = "media-card-2001"
page = "pages/goods/detail.html?id=2001"
sku = "SKU-SERUM-02"
'''


@pytest.fixture
async def card_stack(aiohttp_server: Any, tmp_path: Path, db_url: str) -> Any:
    library = library_copy(tmp_path, {
        "messages/sop_card.toml": CARD_MESSAGE,
        "sops/flash_card.toml": ROOT / "tests/data/sop/flash_card.toml"})
    s = await start_stack(aiohttp_server, tmp_path, db_url, library=library)
    s.sandbox.tenant("acme").media["media-card-2001"] = Media(  # HQ uploaded the picture
        "media-card-2001", "image", "serum.png", 2048, int(s.sandbox.now()))
    yield s
    await s.http.close()


async def test_a_steps_card_is_tracked_for_the_guide_and_the_step(card_stack: Stack) -> None:
    stack = card_stack
    sop = stack.runtime.services.sop
    noon = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai: no quiet hours near
    sop.clock = lambda: noon
    customers = []
    for guide in ("lina", "lina", "zhaolei"):
        added = await stack.sandbox.simulate_add_contact("acme", userid=guide, deliver=False)
        customers.append(added["external_userid"])
        await known(stack, customers=(added["external_userid"],), guides=(guide,))
        status, _ = await stack.admin("/sops/flash_card/enroll", method="POST", json={
            "external_userid": added["external_userid"], "guide": guide})
        assert status == 201
    sop.clock = lambda: noon + timedelta(minutes=2)
    await sop.tick("acme")

    sends = {c["body"]["sender"]: c for c in stack.calls("externalcontact/add_msg_template")}
    assert sorted(sends) == ["lina", "zhaolei"] and all(c["errcode"] == 0
                                                        for c in sends.values())
    pages = {}
    for guide, call in sends.items():
        [card] = [a["miniprogram"] for a in call["body"]["attachments"]]
        url = urlsplit(card["page"])
        assert url.path == "pages/goods/detail.html" and len(card["page"].encode()) <= 128
        pages[guide] = parse_qs(url.query)["t"][0]
    assert pages["lina"] != pages["zhaolei"]  # one link per guide and step
    async with stack.runtime.services.db.read() as s:
        link = await commerce_links.get_link(s, tenant="acme", token=pages["lina"])
    assert link is not None and (link.guide, link.campaign) == ("lina", "sop:flash_card:0")

    async with stack.http.get(f"{stack.bot_url}/t/{pages['lina']}",
                              params=signed_visit(stack, pages["lina"],
                                                  external_userid=customers[0])) as resp:
        assert resp.status == 204
    status, body = await post_settled(stack, paid("SOP-CARD-1", customer=customers[0],
                                                tracking=pages["lina"],
                                                items=[{"sku": "SKU-SERUM-02",
                                                        "category": "beauty",
                                                        "amount_fen": 59900}]))
    assert status == 200 and (body["rule"], body["guide"]) == ("share_link", "lina")
