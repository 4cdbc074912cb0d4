"""自动打标签: the rules of content_library/auto_tags.toml tag a customer who opens a guide's
card (the shipped rules: the beauty category → 美妆兴趣, the serum's sku → 护肤兴趣) or writes
to 微信客服 (防晒, 美白 or SPF → 防晒意向): `externalcontact/mark_tag` in the WeCom sandbox,
through the card's guide (only while the customer follows them) or the customer's exclusive
guide, once per customer and tag; the mark raises the SOP `tag_added` triggers like any."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from guidebot.db.repo import sop_plan
from tests.support.commerce import signed_visit
from tests.support.console import Console
from tests.support.kf import REPLY, customer_writes, sent_texts, use_router
from tests.support.stack import Stack, library_copy, start_stack

SERUM, LIPSTICK, SCARF = "SKU-SERUM-02", "SKU-LIPSTICK-01", "SKU-SCARF-03"
T0 = datetime(2026, 3, 2, 2, 1, tzinfo=UTC)


async def _add(stack: Stack, guide: str, name: str, customer: str | None = None) -> str:
    added = await stack.sandbox.simulate_add_contact("acme", userid=guide, name=name,
                                                     external_userid=customer)
    await stack.runtime.drain()
    return str(added["external_userid"])


async def _link(stack: Stack, guide: str, sku: str = SERUM) -> str:
    status, link = await stack.admin("/links", method="POST", json={"guide": guide, "sku": sku})
    assert status == 201, link
    return str(link["token"])


async def _open(stack: Stack, token: str, at: datetime, customer: str | None = None) -> None:
    """The mini-program's beacon at `at`, signed for `customer` (else an anonymous click);
    answered 204 before anything is marked; then every event handled."""
    stack.runtime.services.commerce.clock = lambda: at
    params = (signed_visit(stack, token, external_userid=customer, ts=str(int(at.timestamp())))
              if customer is not None else {})
    async with stack.http.get(f"{stack.bot_url}/t/{token}", params=params) as resp:
        assert resp.status == 204
    await stack.runtime.drain()


async def _tag_id(stack: Stack, name: str) -> str:
    return (await stack.runtime.services.tags.resolve("acme", [name]))[0]


async def _marks(stack: Stack, customer: str) -> list[tuple[str, tuple[str, ...]]]:
    """(guide, tag ids added) of every mark_tag WeCom took for the customer."""
    return [(c["body"]["userid"], tuple(c["body"].get("add_tag") or ()))
            for c in stack.calls("externalcontact/mark_tag")
            if c["errcode"] == 0 and c["body"]["external_userid"] == customer]


async def _due(stack: Stack) -> list[Any]:
    return [i for i in await stack.inbox_rows() if '"internal": "AutoTagsDue"' in i.payload]


def _sandbox_tags(stack: Stack, customer: str, guide: str) -> set[str]:
    """The names of the tags WeCom (the sandbox) holds on the relation."""
    state = stack.sandbox.state("acme")
    names = {t["id"]: t["name"] for g in state["tag_groups"] for t in g["tag"]}
    follow = stack.sandbox.tenant("acme").follow(guide, customer)
    return {names.get(t, t) for t in follow.tag_ids}


async def test_opening_the_serum_card_marks_its_tags_once(stack: Stack) -> None:
    customer = await _add(stack, "lina", "张晓雨")
    token = await _link(stack, "lina")
    await _open(stack, token, T0, customer)
    beauty, care = await _tag_id(stack, "美妆兴趣"), await _tag_id(stack, "护肤兴趣")
    marked = [("lina", (beauty,)), ("lina", (care,))]  # both rules; a mark per tag
    assert await _marks(stack, customer) == marked
    assert {"美妆兴趣", "护肤兴趣"} <= _sandbox_tags(stack, customer, "lina")
    [due] = await _due(stack)
    assert due.outcome == "on_auto_tags_due" and due.processed_at is not None
    await _open(stack, token, T0 + timedelta(minutes=5), customer)  # the same day
    await _open(stack, token, T0 + timedelta(days=1), customer)  # the next: staged, no mark
    assert len(await _due(stack)) == 2
    # the customer also follows wangfang, whose serum card they open: still those marks
    await _add(stack, "wangfang", "张晓雨", customer)
    await _open(stack, await _link(stack, "wangfang"), T0 + timedelta(days=1), customer)
    # the lipstick (beauty) gives 美妆兴趣 only, which they have
    await _open(stack, await _link(stack, "lina", LIPSTICK), T0 + timedelta(days=2), customer)
    assert len(await _due(stack)) == 4
    assert await _marks(stack, customer) == marked
    # a card no rule names (the scarf: accessories) stages nothing
    await _open(stack, await _link(stack, "lina", SCARF), T0 + timedelta(days=3), customer)
    assert len(await _due(stack)) == 4


async def test_a_customer_who_no_longer_follows_the_guide_is_not_marked(stack: Stack) -> None:
    left = await _add(stack, "lina", "韩梅梅")
    answer = await stack.sandbox.simulate_event("acme", {
        "Event": "change_external_contact", "ChangeType": "del_follow_user",
        "UserID": "lina", "ExternalUserID": left})
    assert answer["delivery"]["status"] == 200
    await stack.runtime.drain()
    elsewhere = await _add(stack, "wangfang", "周婷")  # follows another guide only
    token = await _link(stack, "lina")
    await _open(stack, token, T0, left)
    await _open(stack, token, T0, elsewhere)
    assert await _marks(stack, left) == [] and await _marks(stack, elsewhere) == []
    due = await _due(stack)
    assert len(due) == 2 and all(i.outcome == "on_auto_tags_due" for i in due)
    # the control: a customer who follows lina, the same card
    follower = await _add(stack, "lina", "陈思")
    await _open(stack, token, T0, follower)
    assert [guide for guide, _ in await _marks(stack, follower)] == ["lina", "lina"]


async def test_an_anonymous_click_stages_nothing(stack: Stack) -> None:
    customer = await _add(stack, "lina", "李雷")
    token = await _link(stack, "lina")
    stack.runtime.services.commerce.clock = lambda: T0
    async with stack.http.get(f"{stack.bot_url}/t/{token}",
                              params={"external_userid": customer}) as resp:  # unsigned
        assert resp.status == 204
    await stack.runtime.drain()
    assert await _due(stack) == [] and await _marks(stack, customer) == []


async def test_a_category_rule_works_with_the_radar_turned_off(
        aiohttp_server: Any, tmp_path: Path, db_url: str) -> None:
    """`card_opened = false` stages no CardOpened; the lipstick (beauty) is tagged all the
    same."""
    stack = await start_stack(aiohttp_server, tmp_path, db_url,
                              config_extra="\n[tenants.acme.alerts]\ncard_opened = false\n")
    try:
        customer = await _add(stack, "lina", "郑佳怡")
        await _open(stack, await _link(stack, "lina", LIPSTICK), T0, customer)
        assert await _marks(stack, customer) == [("lina", (await _tag_id(stack, "美妆兴趣"),))]
        assert [i for i in await stack.inbox_rows() if "CardOpened" in i.payload] == []
        assert [m for m in stack.sandbox.state("acme")["app_messages"]
                if m["userid"] == "lina" and m["msgtype"] == "text"] == []
    finally:
        await stack.http.close()


async def test_enabled_false_tags_nobody(aiohttp_server: Any, tmp_path: Path,
                                         db_url: str) -> None:
    stack = await start_stack(aiohttp_server, tmp_path, db_url,
                              config_extra="\n[tenants.acme.auto_tags]\nenabled = false\n")
    try:
        assert stack.tenant().auto_tags.enabled is False
        assert stack.tenant("beta").auto_tags.enabled is True
        use_router(stack)
        customer = await _add(stack, "lina", "王芳")
        await _open(stack, await _link(stack, "lina"), T0, customer)
        await customer_writes(stack, customer, "有防晒霜吗")
        assert sent_texts(stack, customer) == [REPLY]  # the reply goes out as ever
        assert await _due(stack) == [] and await _marks(stack, customer) == []
        console = Console(stack)
        status, html, _ = await console.get(
            "/console/acme/content", headers={"Authorization": "Bearer acme-admin-token"})
        await console.close()
        assert status == 200 and 'data-auto-tags="off"' in html  # the page says so
    finally:
        await stack.http.close()


async def test_a_kf_message_with_a_keyword_marks_its_tag_through_the_exclusive_guide(
        stack: Stack) -> None:
    router = use_router(stack)
    # wangfang first: the exclusive guide (though lina comes first by userid)
    customer = await _add(stack, "wangfang", "孙悦")
    await _add(stack, "lina", "孙悦", customer)
    await customer_writes(stack, customer, "请问有防晒霜吗？")
    assert sent_texts(stack, customer) == [REPLY]
    assert router.seen[0].customer.exclusive_guide == "wangfang"
    sun = await _tag_id(stack, "防晒意向")
    assert await _marks(stack, customer) == [("wangfang", (sun,))]
    await customer_writes(stack, customer, "美白的也想看看")  # the same tag: nothing more
    assert await _marks(stack, customer) == [("wangfang", (sun,))]
    assert len(await _due(stack)) == 2
    other = await _add(stack, "zhaolei", "吴昊")
    await customer_writes(stack, other, "有 spf50 的吗")  # any case
    await customer_writes(stack, other, "你好")  # no rule: nothing staged
    assert await _marks(stack, other) == [("zhaolei", (sun,))]
    assert len(await _due(stack)) == 3


async def test_a_kf_writer_without_a_guide_is_not_marked(stack: Stack) -> None:
    use_router(stack)
    await customer_writes(stack, "wmKFstranger01", "防晒")  # not a contact
    left = await _add(stack, "lina", "周密")
    answer = await stack.sandbox.simulate_event("acme", {
        "Event": "change_external_contact", "ChangeType": "del_follow_user",
        "UserID": "lina", "ExternalUserID": left})
    assert answer["delivery"]["status"] == 200
    await stack.runtime.drain()
    await customer_writes(stack, left, "防晒")  # a contact who follows nobody now
    assert sent_texts(stack, "wmKFstranger01") == [REPLY] and sent_texts(stack, left) == [REPLY]
    assert stack.calls("externalcontact/mark_tag") == []
    due = await _due(stack)
    assert len(due) == 1 and due[0].outcome == "on_auto_tags_due"  # only the contact's


EXACT = """
[[on_message]]
keywords = ["防晒", "SPF"]
match = "exact"
tags = ["防晒意向"]
"""

SOP = """
id = "suncare"
title = "防晒意向跟进"
enabled = true

[trigger]
on = "tag_added"
tags_any = ["防晒意向"]

[[steps]]
at = "+1d"
channel = "guide_task"
message = "sop_winback_miss_you"
"""


async def test_an_exact_rule_wants_the_whole_message_and_the_tag_enrolls_in_a_sop(
        aiohttp_server: Any, tmp_path: Path, db_url: str) -> None:
    library = library_copy(tmp_path, {"auto_tags.toml": EXACT, "sops/suncare.toml": SOP})
    stack = await start_stack(aiohttp_server, tmp_path, db_url, library=library)
    try:
        use_router(stack)
        longer = await _add(stack, "lina", "张晓雨")
        exact = await _add(stack, "lina", "李雷")
        cased = await _add(stack, "zhaolei", "周婷")
        await customer_writes(stack, longer, "有防晒霜吗")
        await customer_writes(stack, exact, "  防晒 ")
        await customer_writes(stack, cased, "spf")
        sun = await _tag_id(stack, "防晒意向")
        assert await _marks(stack, longer) == []
        assert await _marks(stack, exact) == [("lina", (sun,))]
        assert await _marks(stack, cased) == [("zhaolei", (sun,))]
        # the mark is a TagsMarked event: the SOP's tag_added trigger enrolls at once
        async with stack.runtime.services.db.read() as s:
            found = {c: await sop_plan.find_enrollment(s, tenant="acme", sop_id="suncare",
                                                       external_userid=c, guide=g)
                     for c, g in ((longer, "lina"), (exact, "lina"), (cased, "zhaolei"))}
        assert found[longer] is None
        assert [found[c].status for c in (exact, cased)] == ["active", "active"]  # type: ignore[union-attr]
    finally:
        await stack.http.close()
