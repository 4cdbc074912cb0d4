"""A customer followed by more guides than one externalcontact/get page holds: the sandbox
answers follow_user 500 at a time with next_cursor (as WeCom is remembered to, not confirmed),
and guidebot reads every page, so a remark, description and tags a guide set in the WeCom
client are stored even when that guide is on the second page."""

from __future__ import annotations

from typing import Any

from guidebot.sandbox.api.contacts import FOLLOW_PAGE
from tests.scenario.test_customer_remarks import _found, _stored
from tests.support.stack import Stack

CUSTOMER = "wmFOLLOWPAGES0001"


async def _sandbox(stack: Stack, path: str, body: dict[str, Any]) -> dict[str, Any]:
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/acme/{path}", json=body) as resp:
        assert resp.status == 200, await resp.text()
        return dict(await resp.json())


async def _add(stack: Stack, guide: str) -> None:
    added = await _sandbox(stack, "simulate/add_contact", {
        "userid": guide, "external_userid": CUSTOMER, "name": "许诺"})
    assert added["delivery"]["status"] == 200, added
    await stack.runtime.drain()


async def _edit_in_client(stack: Stack, guide: str, **change: Any) -> None:
    stack.sandbox.advance_clock(1)  # two edits of one relation in one second are one payload
    answer = await _sandbox(stack, "simulate/edit_tags",
                            {"userid": guide, "external_userid": CUSTOMER, **change})
    assert answer["delivery"]["status"] == 200, answer  # the encrypted callback arrived
    await stack.runtime.drain()


async def test_remarks_and_tags_on_the_second_follow_user_page_are_stored(
        stack: Stack) -> None:
    await _add(stack, "wangfang")  # first of the customer's guides: page one
    # FOLLOW_PAGE - 1 more guides already followed the customer (an existing base, no
    # callbacks), so page one is full and the next guide to add lands on page two
    seeded = await _sandbox(stack, "seed", {"follows": [
        {"userid": f"seedguide{i:03d}", "external_userid": CUSTOMER}
        for i in range(FOLLOW_PAGE - 1)]})
    assert seeded["follows"] == FOLLOW_PAGE - 1
    async with stack.http.delete(f"{stack.sandbox_url}/_sandbox/calls") as resp:
        assert resp.status == 200
    await _add(stack, "lina")
    gets = stack.calls("externalcontact/get")
    assert [bool(c["query"].get("cursor")) for c in gets] == [False, True], gets

    created = await _sandbox(stack, "tags", {"group_name": "客户分层",
                                             "tag": [{"name": "二页客"}]})
    await stack.runtime.drain()
    [tag] = created["tag_group"]["tag"]
    await _edit_in_client(stack, "lina", add=["二页客"], remark="二页备注",
                          description="第二页的描述")
    assert await _stored(stack, "lina", CUSTOMER) == ("二页备注", "第二页的描述")
    assert await _found(stack, "二页备注") == [CUSTOMER]
    assert await _found(stack, "第二页的描述") == [CUSTOMER]
    status, card = await stack.admin(f"/customers/{CUSTOMER}")
    assert status == 200 and card["tags"] == ["二页客"], card
    assert stack.sandbox.tenant("acme").follow("lina", CUSTOMER).tag_ids == [tag["id"]]

    # a page-one guide's edit reads every page again: the page-two remark is kept as WeCom has
    # it, the page-one guide's own is stored too
    await _edit_in_client(stack, "wangfang", remark="一页备注")
    assert await _stored(stack, "wangfang", CUSTOMER) == ("一页备注", "")
    assert await _stored(stack, "lina", CUSTOMER) == ("二页备注", "第二页的描述")
    pages = [bool(c["query"].get("cursor")) for c in stack.calls("externalcontact/get")]
    assert pages == [False, True] * 3, pages  # one read of two pages at the add and each edit
