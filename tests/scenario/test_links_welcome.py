"""A welcome's mini-program card is tracked for the adding guide: the card the sandbox receives
opens a page with t=<token>, the visit is a touch credited to that guide, and an order carrying
the token is hers — over HTTP, against the sandbox."""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from guidebot.contacts.welcome import card_token
from guidebot.sandbox.models import Media
from tests.support import stack as stack_support
from tests.support.commerce import paid, post_settled, signed_visit
from tests.support.stack import Stack, start_stack

CARD_MESSAGE = '''text = "您好，我是{{ guide.name }}"

[[attachments]]
type = "miniprogram"
title = "修护精华液 30ml"
appid = "wxbrandstore0001"
pic_media_id = "media-card-1002"
page = "pages/goods/detail.html?id=1002"
sku = "SKU-SERUM-02"

[[attachments]]
type = "link"
title = "会员中心"
url = "https://example.com/member"
'''


LONG_PAGE = "pages/goods/detail.html?id=1002&from=" + "x" * 85  # no room for a token

TWO_CARDS = f'''text = "您好"

[[attachments]]
type = "miniprogram"
title = "修护精华液 30ml"
appid = "wxbrandstore0001"
pic_media_id = "media-card-1002"
page = "{LONG_PAGE}"
sku = "SKU-SERUM-02"

[[attachments]]
type = "miniprogram"
title = "修护精华液 30ml"
appid = "wxbrandstore0001"
pic_file = "media/kf_card.png"
page = "pages/goods/detail.html?id=1002"
sku = "SKU-SERUM-02"

[[attachments]]
type = "link"
title = "会员中心"
url = "https://example.com/member"
'''


FIELDS = 'text = "{{ customer.name }}|{{ guide.name }}|{{ guide.userid }}|{{ store.name }}"\n'
LINK_ONLY = '''[[attachments]]
type = "link"
title = "会员中心"
url = "https://example.com/member"
'''
DIRECTORY = {"departments": [{"id": 1, "name": "acme", "parentid": 0},
                             {"id": 21, "name": "湖滨一组", "parentid": 1}],
             "members": [{"userid": "xiaomei", "name": "林小美", "department": [21]}]}


@pytest.fixture
async def card_stack(aiohttp_server, tmp_path: Path, db_url: str,  # type: ignore[no-untyped-def]
                     monkeypatch: pytest.MonkeyPatch):
    """The demo library plus one welcome message with a product card."""
    root = tmp_path / "root"
    shutil.copytree(stack_support.ROOT / "content_library", root / "content_library")
    (root / "content_library" / "messages" / "welcome_card.toml").write_text(
        CARD_MESSAGE, encoding="utf-8")
    (root / "content_library" / "messages" / "welcome_two_cards.toml").write_text(
        TWO_CARDS, encoding="utf-8")
    (root / "content_library" / "messages" / "welcome_fields.toml").write_text(
        FIELDS, encoding="utf-8")
    (root / "content_library" / "messages" / "welcome_link_only.toml").write_text(
        LINK_ONLY, encoding="utf-8")
    monkeypatch.setattr(stack_support, "ROOT", root)
    s = await start_stack(aiohttp_server, tmp_path, db_url)
    # HQ uploaded the card picture beforehand (media/upload; valid for three days).
    s.sandbox.tenant("acme").media["media-card-1002"] = Media(
        "media-card-1002", "image", "serum.png", 2048, int(s.sandbox.now()))
    yield s
    await s.http.close()


def _card_page(welcome: dict) -> str:
    cards = [a for a in welcome["body"]["attachments"] if a["msgtype"] == "miniprogram"]
    assert len(cards) == 1
    return str(cards[0]["miniprogram"]["page"])


async def test_welcome_card_is_tracked_for_the_adding_guide(card_stack: Stack) -> None:
    stack = card_stack
    _, code = await stack.admin("/channels", method="POST",
                                json={"guide": "lina", "welcome_message": "welcome_card"})
    added = await stack.sandbox.simulate_add_contact("acme", config_id=code["config_id"])
    assert added["delivery"]["status"] == 200
    await stack.runtime.drain()

    [welcome] = stack.calls("externalcontact/send_welcome_msg")
    page = _card_page(welcome)
    path, query = urlsplit(page).path, parse_qs(urlsplit(page).query)
    assert path == "pages/goods/detail.html" and query["id"] == ["1002"]
    assert len(page.encode()) <= 128
    [token] = query["t"]
    links = [a for a in welcome["body"]["attachments"] if a["msgtype"] == "link"]
    assert links[0]["link"]["url"] == "https://example.com/member"  # untouched

    customer = added["external_userid"]
    async with stack.http.get(f"{stack.bot_url}/t/{token}",
                              params={**signed_visit(stack, token, external_userid=customer),
                                      "dur": "30"}) as resp:
        assert resp.status == 204
    _, view = await stack.admin(f"/customers/{customer}")
    assert (view["propensity"]["visits_30d"], view["propensity"]["dwell_s_30d"]) == (1, 30)
    assert welcome["errcode"] == 0  # WeCom (the sandbox) accepted the card

    status, body = await post_settled(stack, paid("WEL-1", customer=customer, tracking=token,
                                                 items=[{"sku": "SKU-SERUM-02",
                                                         "category": "beauty",
                                                         "amount_fen": 59900}]))
    assert status == 200 and body["guide"] == "lina" and body["rule"] == "share_link"
    _, order = await stack.admin("/orders/WEL-1")
    assert order["attribution"]["evidence"]["touch"]["token"] == token


async def test_the_same_guide_and_message_reuse_one_link(card_stack: Stack) -> None:
    stack = card_stack
    _, code = await stack.admin("/channels", method="POST",
                                json={"guide": "lina", "welcome_message": "welcome_card"})
    for _ in range(2):
        await stack.sandbox.simulate_add_contact("acme", config_id=code["config_id"])
    _, other = await stack.admin("/channels", method="POST",
                                 json={"guide": "zhaolei", "welcome_message": "welcome_card"})
    await stack.sandbox.simulate_add_contact("acme", config_id=other["config_id"])
    await stack.runtime.drain()
    pages = Counter(_card_page(w) for w in stack.calls("externalcontact/send_welcome_msg"))
    assert sorted(pages.values()) == [1, 2]  # lina's two adds share one page, zhaolei's differs


def test_the_card_token_is_the_first_mini_program_cards_t() -> None:
    """What a welcome's material use records as its card (welcome.card_token)."""
    card = {"msgtype": "miniprogram", "miniprogram": {"page": "pages/p?sku=A&t=tok1"}}
    assert card_token([{"msgtype": "image", "image": {"media_id": "m"}}, card,
                       {"msgtype": "miniprogram",
                        "miniprogram": {"page": "pages/p?t=tok2"}}]) == "tok1"
    assert card_token([{"msgtype": "miniprogram", "miniprogram": {"page": "pages/p?sku=A"}},
                       card]) == ""  # the first card, untracked
    assert card_token([{"msgtype": "miniprogram", "miniprogram": {}}]) == ""
    assert card_token([{"msgtype": "link", "link": {"url": "https://x/?t=no"}}]) == ""
    assert card_token([]) == ""


async def test_a_card_that_cannot_be_tracked_or_uploaded_does_not_hold_the_welcome(
        card_stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    """A page with no room for the token goes untracked; a card whose picture fails to
    upload is left out; the rest of the welcome goes, and the log says which and why."""
    stack = card_stack
    caplog.set_level(logging.INFO, logger="guidebot.contacts.welcome")
    _, code = await stack.admin("/channels", method="POST",
                                json={"guide": "lina", "welcome_message": "welcome_two_cards"})
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/faults", json={
            "tenant": "acme", "path": "media/upload", "errcode": 40004, "times": 1}) as resp:
        assert resp.status == 200
    added = await stack.sandbox.simulate_add_contact("acme", config_id=code["config_id"])
    await stack.runtime.drain()
    [welcome] = stack.calls("externalcontact/send_welcome_msg")
    body = welcome["body"]
    assert welcome["errcode"] == 0 and body["welcome_code"] == added["welcome_code"]
    assert body["text"] == {"content": "您好"}
    assert [a["msgtype"] for a in body["attachments"]] == ["miniprogram", "link"]
    assert body["attachments"][0]["miniprogram"]["page"] == LONG_PAGE  # untracked
    assert ("welcome card left untracked tenant=acme message=welcome_two_cards: page: longer "
            "than 128 bytes with the token") in caplog.messages
    assert ("welcome tenant=acme message=welcome_two_cards: miniprogram attachment left out "
            "(WeComApiError)") in caplog.messages
    assert "welcome tenant=acme message=welcome_two_cards outcome=done" in caplog.messages


async def test_a_welcome_fills_in_the_customer_guide_and_store(card_stack: Stack) -> None:
    """Each placeholder a welcome may use, from the add: the customer's name (read for it),
    the adding guide's name and userid, and her store, from the address book."""
    stack = card_stack
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/acme/directory",
                               json={**DIRECTORY, "deliver": True}) as resp:
        assert resp.status == 200, await resp.text()
    await stack.runtime.drain()
    status, code = await stack.admin("/channels", method="POST", json={
        "guide": "xiaomei", "welcome_message": "welcome_fields"})
    assert status == 201, code
    await stack.sandbox.simulate_add_contact("acme", config_id=code["config_id"], name="周婷")
    await stack.runtime.drain()
    [welcome] = stack.calls("externalcontact/send_welcome_msg")
    assert welcome["body"]["text"]["content"] == "周婷|林小美|xiaomei|湖滨一组"


async def test_a_welcome_of_attachments_only_goes_without_text(card_stack: Stack) -> None:
    stack = card_stack
    status, code = await stack.admin("/channels", method="POST", json={
        "guide": "lina", "welcome_message": "welcome_link_only"})
    assert status == 201, code
    added = await stack.sandbox.simulate_add_contact("acme", config_id=code["config_id"])
    await stack.runtime.drain()
    [welcome] = stack.calls("externalcontact/send_welcome_msg")
    assert (welcome["errcode"], welcome["body"]) == (0, {
        "welcome_code": added["welcome_code"],
        "attachments": [{"msgtype": "link", "link": {"title": "会员中心",
                                                     "url": "https://example.com/member"}}]})


async def test_a_welcome_card_naming_no_appid_gets_the_tenants_mini_program(
        aiohttp_server: Any, tmp_path: Path, db_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    shutil.copytree(stack_support.ROOT / "content_library", root / "content_library")
    (root / "content_library" / "messages" / "welcome_card_no_appid.toml").write_text(
        CARD_MESSAGE.replace('appid = "wxbrandstore0001"\n', ""), encoding="utf-8")
    monkeypatch.setattr(stack_support, "ROOT", root)
    stack = await start_stack(aiohttp_server, tmp_path, db_url,
                              acme_config='miniprogram_appid = "wxtenantapp00001"\n')
    try:
        stack.sandbox.tenant("acme").media["media-card-1002"] = Media(
            "media-card-1002", "image", "serum.png", 2048, int(stack.sandbox.now()))
        status, code = await stack.admin("/channels", method="POST", json={
            "guide": "lina", "welcome_message": "welcome_card_no_appid"})
        assert status == 201, code
        await stack.sandbox.simulate_add_contact("acme", config_id=code["config_id"])
        await stack.runtime.drain()
        [welcome] = stack.calls("externalcontact/send_welcome_msg")
        cards = [a["miniprogram"] for a in welcome["body"]["attachments"]
                 if a["msgtype"] == "miniprogram"]
        assert welcome["errcode"] == 0 and [c["appid"] for c in cards] == ["wxtenantapp00001"]
        assert sorted(cards[0]) == ["appid", "page", "pic_media_id", "title"]  # no sku, type
    finally:
        await stack.http.close()
