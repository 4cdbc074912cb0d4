"""The customer's page in the console shows their 微信客服 conversation: each message with
the route guidebot took and its outcome, and only that customer's messages."""

from __future__ import annotations

from tests.support.console import Console
from tests.support.kf import customer_writes, use_router
from tests.support.stack import Stack


async def test_customer_page_shows_their_kf_messages_with_routes(stack: Stack) -> None:
    use_router(stack)
    one = await stack.sandbox.simulate_add_contact("acme", userid="lina", name="张三")
    other = await stack.sandbox.simulate_add_contact("acme", userid="lina", name="李四")
    await stack.runtime.drain()
    await customer_writes(stack, one["external_userid"], "这款精华适合干皮吗")
    await customer_writes(stack, one["external_userid"], "转人工")
    await customer_writes(stack, other["external_userid"], "营业时间是几点")
    console = Console(stack)
    try:
        await console.login("acme", "acme-admin-token")
        status, html, _ = await console.get(f"/console/acme/customers/{one['external_userid']}")
        assert status == 200
        table = html[html.index('<table id="conversation">'):]
        table = table[:table.index("</table>")]
        rows = table.split("<tr data-msgid=")[1:]
        assert len(rows) == 2
        assert "这款精华适合干皮吗" in rows[0] and "catalog" in rows[0] and "已自动回复" in rows[0]
        assert "转人工" in rows[1] and "handoff" in rows[1] and "已转导购" in rows[1]
        assert "营业时间是几点" not in html  # another customer's message
        status, html, _ = await console.get(
            f"/console/acme/customers/{other['external_userid']}?lang=en")
        assert "营业时间是几点" in html and "answered" in html and "转人工" not in html
    finally:
        await console.close()


async def test_a_conversation_matched_only_by_unionid_shows_on_the_contacts_page(
        stack: Stack) -> None:
    """The customer writes to 微信客服 under another external_userid than their 客户联系 one;
    kf/customer/batchget's unionid matches them, and the contact's page shows the messages."""
    use_router(stack)
    unionid = "oUNION00000000000000000000042"
    added = await stack.sandbox.simulate_add_contact("acme", userid="lina", name="孙悦",
                                                     unionid=unionid)
    stranger = await stack.sandbox.simulate_add_contact("acme", userid="lina", name="周舟")
    await stack.runtime.drain()
    await customer_writes(stack, "wmKFunion0042", "这款精华适合干皮吗", unionid=unionid)
    await customer_writes(stack, "wmKFunion0042", "营业时间是几点", unionid=unionid)
    # the unionid was asked once, then read from what guidebot stored
    assert [c["body"]["external_userid_list"] for c in stack.calls("kf/customer/batchget")] \
        == [["wmKFunion0042"]]
    console = Console(stack)
    try:
        await console.login("acme", "acme-admin-token")
        status, html, _ = await console.get(
            f"/console/acme/customers/{added['external_userid']}")
        assert status == 200
        table = html[html.index('<table id="conversation">'):]
        table = table[:table.index("</table>")]
        rows = table.split("<tr data-msgid=")[1:]
        assert len(rows) == 2
        assert "这款精华适合干皮吗" in rows[0] and "营业时间是几点" in rows[1]
        status, html, _ = await console.get(
            f"/console/acme/customers/{stranger['external_userid']}")
        assert status == 200 and "这款精华适合干皮吗" not in html
    finally:
        await console.close()
