"""微信客服 test helpers: a small real ReplyRouter with fixed rules, and sandbox calls."""

from __future__ import annotations

from typing import Any

from guidebot.chat.decision import Decision, Inbound, Route
from tests.support.stack import Stack

KFID = "wkACMEshop000000000000001"  # configured for acme in tests/support/stack.py
REPLY = "您好，已收到您的消息，稍后为您解答。"
SUMMARY = "客户要求人工服务\n最近咨询：退换货"


class RuleRouter:
    """Fixed rules: 转人工 → handoff, 精华 → a catalog card, 退订 → opt-out, empty → ignored,
    else a fixed reply.
    Keeps every Inbound it was asked about."""

    def __init__(self) -> None:
        self.seen: list[Inbound] = []

    async def decide(self, inbound: Inbound) -> Decision:
        self.seen.append(inbound)
        if "转人工" in inbound.text:
            return Decision(Route.HANDOFF, "asked for a person", summary=SUMMARY)
        if "精华" in inbound.text:
            return Decision(Route.CATALOG, "catalog product", text="推荐这款：",
                            card_sku="SKU-SERUM-02", facts=("SKU-SERUM-02",))
        if "退订" in inbound.text:
            return Decision(Route.OPT_OUT, "opt-out word", text="已为您退订。")
        if not inbound.text.strip():
            return Decision(Route.IGNORED, "empty")
        return Decision(Route.REPLY, "fixed rule", text=REPLY)


def use_router(stack: Stack, router: RuleRouter | None = None) -> RuleRouter:
    router = router or RuleRouter()
    assert stack.runtime.services.kf is not None
    stack.runtime.services.kf.router = router
    return router


async def control(stack: Stack, path: str, body: dict[str, Any] | None = None,
                  tenant: str = "acme") -> Any:
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/{tenant}/{path}",
                               json=body or {}) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def customer_writes(stack: Stack, external_userid: str, text: str, *,
                          open_kfid: str = KFID, deliver: bool = True, drain: bool = True,
                          **extra: str) -> Any:
    result = await control(stack, "simulate/kf_message", {
        "open_kfid": open_kfid, "external_userid": external_userid, "text": text,
        "deliver": deliver, **extra})
    if drain:
        await stack.runtime.drain()
    return result


async def kf_state(stack: Stack, tenant: str = "acme") -> Any:
    async with stack.http.get(f"{stack.sandbox_url}/_sandbox/{tenant}/kf") as resp:
        return await resp.json()


def session(state: Any, external_userid: str, open_kfid: str = KFID) -> Any:
    return next(s for s in state["sessions"] if s["external_userid"] == external_userid
                and s["open_kfid"] == open_kfid)


def sent_texts(stack: Stack, touser: str | None = None) -> list[str]:
    return [c["body"]["text"]["content"] for c in stack.calls("kf/send_msg")
            if c["errcode"] == 0 and c["body"].get("msgtype") == "text"
            and touser in (None, c["body"]["touser"])]


async def kf_rows(stack: Stack, external_userid: str | None = None) -> list[Any]:
    from guidebot.db.repo import kf as kf_repo

    async with stack.runtime.services.db.read() as s:
        return list(await kf_repo.messages_of(s, tenant="acme",
                                              external_userid=external_userid))


KF_CARD = '''# the thumbnail and appid of kf product cards
[[attachments]]
type = "miniprogram"
title = "商品"
appid = "wxbrandstore0001"
pic_file = "media/kf_card.png"
page = "pages/index/index.html"
'''
KF_CARD_FILES: dict[str, str | bytes] = {
    "messages/kf_card.toml": KF_CARD, "media/kf_card.png": b"\x89PNG\r\n\x1a\n" + bytes(64)}


async def card_stack(aiohttp_server: Any, tmp_path: Any, db_url: str) -> tuple[Stack, str]:
    """A stack whose library has the kf card's picture, with the RuleRouter and lina's
    customer 孙悦 who asked for 修护精华 (the bot sent a text and the product's card)."""
    from tests.support.stack import library_copy, start_stack

    stack = await start_stack(aiohttp_server, tmp_path, db_url,
                              library=library_copy(tmp_path, KF_CARD_FILES))
    use_router(stack)
    added = await stack.sandbox.simulate_add_contact("acme", userid="lina", name="孙悦")
    await stack.runtime.drain()
    await customer_writes(stack, added["external_userid"], "修护精华有货吗")
    return stack, str(added["external_userid"])
