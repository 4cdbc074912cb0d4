"""微信客服 end to end: the sandbox raises kf_msg_or_event, guidebot pages kf/sync_msg and
answers within WeCom's rules, hands off to the bound guide, attributes kf link entries."""

from __future__ import annotations

from tests.support.kf import (
    KFID,
    REPLY,
    SUMMARY,
    customer_writes,
    kf_rows,
    kf_state,
    sent_texts,
    session,
    use_router,
)
from tests.support.stack import Stack


async def test_a_customer_who_is_not_a_contact_gets_a_reply(stack: Stack) -> None:
    router = use_router(stack)
    written = await customer_writes(stack, "wmKFstranger01", "你好，请问营业时间？")
    assert written["delivery"]["status"] == 200
    assert sent_texts(stack, "wmKFstranger01") == [REPLY]
    [inbound] = router.seen
    assert inbound.open_kfid == KFID and inbound.msgid == written["msgid"]
    assert inbound.text == "你好，请问营业时间？"
    assert inbound.customer.external_userid == "wmKFstranger01"
    assert inbound.customer.exclusive_guide is None and inbound.customer.tags == ()
    # the bot answered: 0 → 1 (智能助手), and the message ends with its route and reason
    assert session(await kf_state(stack), "wmKFstranger01")["service_state"] == 1
    [row] = await kf_rows(stack, "wmKFstranger01")
    assert (row.status, row.route, row.reason) == ("replied", "reply", "fixed rule")
    trans = stack.calls("kf/service_state/trans")
    assert [c["body"]["service_state"] for c in trans] == [1]



async def test_contact_matched_by_unionid_gets_their_context(stack: Stack) -> None:
    """A kf customer with another external_userid than their 客户联系 one is matched through the
    unionid kf/customer/batchget gives; the router sees the exclusive guide and tags."""
    router = use_router(stack)
    added = await stack.sandbox.simulate_add_contact("acme", userid="lina", name="孙悦",
                                                     unionid="oUNION00000000000000000000001")
    await stack.runtime.drain()
    await customer_writes(stack, "wmKFother0001", "在吗", unionid="oUNION00000000000000000000001")
    [inbound] = router.seen
    assert inbound.customer.external_userid == added["external_userid"]
    assert inbound.customer.exclusive_guide == "lina" and inbound.customer.name == "孙悦"
    assert [c["body"]["external_userid_list"] for c in stack.calls("kf/customer/batchget")] \
        == [["wmKFother0001"]]
    assert sent_texts(stack, "wmKFother0001") == [REPLY]


async def test_an_account_not_configured_is_not_read(stack: Stack) -> None:
    router = use_router(stack)
    written = await customer_writes(stack, "wmKFx01", "你好", open_kfid="wkNOTours0000000000000001")
    assert written["delivery"]["status"] == 200
    assert stack.calls("kf/sync_msg") == [] and router.seen == []
    assert [i.outcome for i in await stack.inbox_rows()] == ["on_kf_msg_or_event"]
