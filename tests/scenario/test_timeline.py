"""客户动态 over HTTP: a customer added through a store code, joining a group, opening a
card, getting an SOP step and buying, then the admin API's timeline, the sidebar's and the
console's customer page list those, newest first, with their details; another tenant and an
unknown customer get 404."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape
from zoneinfo import ZoneInfo

from tests.support.commerce import paid, post_order, post_settled, refunded, signed_visit
from tests.support.console import Console, customer_page
from tests.support.sidebar import sign_in
from tests.support.stack import Stack

SHANGHAI = ZoneInfo("Asia/Shanghai")


async def _journey(stack: Stack) -> tuple[str, datetime]:
    """The customer's story; returns their id and when the SOP step was due."""
    status, code = await stack.admin("/channels", method="POST",
                                     json={"guide": "lina", "store": "S01"})
    assert status == 201, code
    added_at = int(datetime.now(UTC).timestamp()) - 120
    added = await stack.sandbox.simulate_add_contact("acme", config_id=code["config_id"],
                                                     name="张晓雨", create_time=added_at)
    await stack.runtime.drain()
    customer = str(added["external_userid"])
    await stack.sandbox.create_group("acme", "lina", name="静安老客群", members=[customer])
    await stack.runtime.drain()

    status, link = await stack.admin("/links", method="POST", json={
        "guide": "lina", "sku": "SKU-SERUM-02", "customer": customer})
    assert status == 201, link
    async with stack.http.get(f"{stack.bot_url}/t/{link['token']}",
                              params=signed_visit(stack, link["token"],
                                                  external_userid=customer)) as resp:
        assert resp.status == 204

    # 新客培育's day-1 step (10:00 the day after the add, Shanghai time) sent as a guide task
    trigger = datetime.fromtimestamp(added_at, UTC).astimezone(SHANGHAI).date()
    day1 = trigger + timedelta(days=1)
    due = datetime(day1.year, day1.month, day1.day, 10, 0, tzinfo=SHANGHAI)
    sop = stack.runtime.services.sop
    sop.clock = lambda: (due + timedelta(minutes=1)).astimezone(UTC)
    await sop.tick("acme")
    assert len(stack.calls("externalcontact/add_msg_template")) == 1

    item = {"sku": "SKU-SERUM-02", "category": "beauty", "quantity": 1, "amount_fen": 2605}
    status, body = await post_order(stack, paid("TL-1", customer=customer, items=[item],
                                                paid_at=datetime.now(UTC)))
    assert status < 300, body
    await stack.runtime.drain()
    return customer, due


async def test_the_timeline_in_the_api_the_sidebar_and_the_console(stack: Stack) -> None:
    customer, due = await _journey(stack)

    status, body = await stack.admin(f"/customers/{customer}/timeline")
    assert status == 200, body
    assert body["external_userid"] == customer
    events = body["events"]
    ats = [datetime.fromisoformat(e["at"]) for e in events]
    assert ats == sorted(ats, reverse=True)
    assert all(a.utcoffset() == timedelta(0) for a in ats)
    kinds = [e["kind"] for e in events]
    # newest first: tomorrow's SOP step, the order, the card open, the group join, the add;
    # the SOP's welcome step failed (the add is older than its WelcomeCode): not listed
    assert kinds == ["sop_step", "order", "card_open", "group_join", "follow"], kinds
    step, order, visit, group = events[:4]
    assert (step["sop_id"], step["sop_title"], step["step"], step["guide"]) == (
        "new_customer_nurture", "新客培育", 2, "lina")
    assert datetime.fromisoformat(step["at"]) == due
    assert step["channel"] == "guide_task"
    assert (order["order_no"], order["amount_fen"], order["guide"]) == ("TL-1", 2605, "lina")
    assert order["rule"] != "none"
    assert (visit["sku"], visit["product"], visit["guide"]) == (
        "SKU-SERUM-02", "修护精华液 30ml", "lina")
    assert (group["group_name"], group["guide"]) == ("静安老客群", "lina")
    assert group["chat_id"]
    follow = events[4]
    assert (follow["action"], follow["guide"]) == ("added", "lina")
    names = {e["guide_name"] for e in events}
    assert len(names) == 1 and names != {None}

    status, short = await stack.admin(f"/customers/{customer}/timeline?limit=2")
    assert status == 200 and short["events"] == events[:2]
    for bad in ("0", "101", "x"):
        status, refused = await stack.admin(f"/customers/{customer}/timeline?limit={bad}")
        assert status == 400 and refused["field"] == "limit", refused

    # the sidebar: the guide's chat with this customer shows the same events, timed in the
    # tenant's zone
    guide = await sign_in(stack, "lina")
    status, card = await guide.get(f"/customer/{customer}")
    await guide.http.close()
    assert status == 200, card
    shown = card["timeline"]
    assert [e["kind"] for e in shown] == kinds
    assert shown[0]["when"] == due.strftime("%m-%d %H:%M") == shown[0]["when"][:11]
    assert shown[1]["amount_fen"] == 2605 and shown[2]["product"] == "修护精华液 30ml"

    section = await _console_timeline(stack, customer)
    rows = re.findall(r'<tr data-kind="([a-z_]+)"><th scope="row">([^<]+)</th>', section)
    assert [k for k, _ in rows] == kinds
    assert rows[0][1] == due.strftime("%Y-%m-%d %H:%M")
    text = unescape(re.sub(r"<[^>]+>", " ", section))
    for words in ("新客培育", "第 2 步", "TL-1", "¥26.05", "修护精华液 30ml", "静安老客群",
                  "打开了卡片", "下单", "加入客户群", "添加了导购"):
        assert words in text, words
    english = await _console_timeline(stack, customer, "?lang=en")
    assert "opened a card" in english and "step 2" in english


async def _console_timeline(stack: Stack, customer: str, query: str = "") -> str:
    """The 客户动态 table of the console's customer page."""
    html = await customer_page(stack, customer, query)
    section = html[html.index('id="timeline"'):]
    return section[:section.index("</table>")]


async def test_another_tenant_and_an_unknown_customer_get_404(stack: Stack) -> None:
    customer, _ = await _journey(stack)
    status, body = await stack.admin(f"/customers/{customer}/timeline", tenant="beta")
    assert status == 404 and body["field"] == "external_userid", body
    status, body = await stack.admin("/customers/wmNOBODY/timeline")
    assert status == 404 and body["field"] == "external_userid", body
    status, _ = await stack.admin(f"/customers/{customer}/timeline", token="wrong")
    assert status == 403


async def test_a_customer_without_events_has_an_empty_timeline(stack: Stack) -> None:
    added = await stack.sandbox.simulate_add_contact("acme", userid="lina", name="陈思")
    await stack.runtime.drain()
    customer = str(added["external_userid"])
    status, body = await stack.admin(f"/customers/{customer}/timeline")
    assert status == 200
    assert [(e["kind"], e["action"], e["guide"]) for e in body["events"]] == [
        ("follow", "added", "lina")]
    console = Console(stack)
    try:
        await console.login("acme", "acme-admin-token")
        status, html, _ = await console.get(f"/console/acme/customers/{customer}")
        assert status == 200 and html.count('<tr data-kind="') == 1
    finally:
        await console.close()


async def test_a_refund_is_listed_beside_its_order(stack: Stack) -> None:
    """order.refunded: the refund (its amount in fen, ¥ in words) after the order, with the
    order's guide, in the API, the sidebar and the console; a refund of another customer's
    order is not."""
    added = await stack.sandbox.simulate_add_contact("acme", userid="lina", name="陈思")
    other = await stack.sandbox.simulate_add_contact("acme", userid="lina", name="王五")
    await stack.runtime.drain()
    customer = str(added["external_userid"])
    paid_at = datetime(2031, 5, 1, 2, tzinfo=UTC)
    item = {"sku": "SKU-SERUM-02", "category": "beauty", "quantity": 1, "amount_fen": 2605}
    for order_no, who in (("RF-1", customer), ("RF-2", str(other["external_userid"]))):
        status, body = await post_settled(stack, paid(order_no, customer=who, items=[item],
                                                      paid_at=paid_at))
        assert status == 200, body
        status, body = await post_settled(stack, refunded(
            order_no, f"R-{order_no}", [{"sku": "SKU-SERUM-02", "amount_fen": 1000}],
            at=paid_at + timedelta(days=2)))
        assert status == 200, body

    status, body = await stack.admin(f"/customers/{customer}/timeline")
    assert status == 200, body
    assert [e["kind"] for e in body["events"]] == ["refund", "order", "follow"]
    refund = body["events"][0]
    assert (refund["order_no"], refund["refund_no"], refund["amount_fen"], refund["guide"]) == (
        "RF-1", "R-RF-1", 1000, "lina")
    assert datetime.fromisoformat(refund["at"]) == paid_at + timedelta(days=2)

    guide = await sign_in(stack, "lina")
    status, card = await guide.get(f"/customer/{customer}")
    await guide.http.close()
    assert status == 200 and [e["kind"] for e in card["timeline"]][:2] == ["refund", "order"]
    section = await _console_timeline(stack, customer)
    row = section[section.index('<tr data-kind="refund">'):]
    row = unescape(re.sub(r"<[^>]+>", " ", row[:row.index("</tr>")]))
    for words in ("退款", "RF-1", "R-RF-1", "¥10.00"):
        assert words in row, (words, row)
