"""自动打标签 of paid orders: `[[on_order]]` rules of content_library/auto_tags.toml tag a
customer whose signed order (POST /orders/{tenant}) has a line of a listed sku or category
and/or is paid at least `min_paid_fen`: `externalcontact/mark_tag` in the WeCom sandbox,
through the guide the order was credited to while the customer follows them, once per
customer and tag; a refund untags nothing; the mark starts SOPs triggered by `tag_added`.
OrderService.paid stages the same and wakes the inbox after its commit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from guidebot.commerce.attribution import Item
from guidebot.commerce.schema import CustomerRef, PaidOrder
from guidebot.db.repo import sop_plan
from guidebot.inbox import InboxPolicy
from tests.support.commerce import paid, post_settled, refunded, signed_visit
from tests.support.console import Console
from tests.support.stack import ROOT, Stack, library_copy, start_stack

LONG_POLL = InboxPolicy(poll_s=3600.0)  # the processor claims soon only when woken
HANG_GUARD_S = 60  # not a timing assertion: how long to wait before failing
SERUM, SCARF = "SKU-SERUM-02", "SKU-SCARF-03"
BOUGHT, BIG = "已购护肤", "高客单"
RULES = f"""
[[on_order]]
skus = ["{SERUM}"]
tags = ["{BOUGHT}"]

[[on_order]]
min_paid_fen = 100000
tags = ["{BIG}"]
"""
SOP = f"""
id = "bought_care"
title = "护肤购后关怀"
enabled = true

[trigger]
on = "tag_added"
tags_any = ["{BOUGHT}"]

[[steps]]
at = "+1d"
channel = "guide_task"
message = "sop_winback_miss_you"
"""


def _library(tmp_path: Path) -> Path:
    tags = (ROOT / "content_library" / "tags.toml").read_text(encoding="utf-8")
    tags += f'\n[[groups]]\nname = "购买行为"\ntags = ["{BOUGHT}", "{BIG}"]\n'
    return library_copy(tmp_path, {"auto_tags.toml": RULES, "tags.toml": tags,
                                   "sops/bought_care.toml": SOP})


@pytest.fixture
async def shop(aiohttp_server: Any, tmp_path: Path, db_url: str) -> AsyncIterator[Stack]:
    stack = await start_stack(aiohttp_server, tmp_path, db_url, library=_library(tmp_path))
    yield stack
    await stack.http.close()


async def _add(stack: Stack, guide: str, name: str, customer: str | None = None) -> str:
    added = await stack.sandbox.simulate_add_contact("acme", userid=guide, name=name,
                                                     external_userid=customer)
    await stack.runtime.drain()
    return str(added["external_userid"])


async def _visit(stack: Stack, guide: str, customer: str) -> None:
    """The customer opens the guide's serum card: the touch that credits the guide."""
    status, link = await stack.admin("/links", method="POST", json={"guide": guide,
                                                                    "sku": SERUM})
    assert status == 201, link
    async with stack.http.get(f"{stack.bot_url}/t/{link['token']}", params=signed_visit(
            stack, link["token"], external_userid=customer)) as resp:
        assert resp.status == 204
    await stack.runtime.drain()


async def _order(stack: Stack, order_no: str, customer: str, sku: str,
                 amount_fen: int) -> dict[str, Any]:
    """A signed order of one line (no category: the catalog's), attributed and handled."""
    status, body = await post_settled(stack, paid(order_no, customer=customer, items=[
        {"sku": sku, "quantity": 1, "amount_fen": amount_fen}]))
    assert status == 200 and body["status"] == "recorded", body
    await stack.runtime.drain()
    return dict(body)


async def _tag_id(stack: Stack, name: str) -> str:
    return (await stack.runtime.services.tags.resolve("acme", [name]))[0]


def _marks(stack: Stack, customer: str) -> list[tuple[str, tuple[str, ...]]]:
    return [(c["body"]["userid"], tuple(c["body"].get("add_tag") or ()))
            for c in stack.calls("externalcontact/mark_tag")
            if c["errcode"] == 0 and c["body"]["external_userid"] == customer]


def _sandbox_tags(stack: Stack, customer: str, guide: str) -> set[str]:
    state = stack.sandbox.state("acme")
    names = {t["id"]: t["name"] for g in state["tag_groups"] for t in g["tag"]}
    return {names.get(t, t) for t in stack.sandbox.tenant("acme").follow(guide,
                                                                         customer).tag_ids}


async def _mirror(stack: Stack, customer: str) -> Any:
    status, body = await stack.admin(f"/customers/{customer}")
    assert status == 200, body
    return body["tags"]


async def _due(stack: Stack) -> list[Any]:
    return [i for i in await stack.inbox_rows() if '"internal": "AutoTagsDue"' in i.payload]


async def test_a_serum_order_tags_the_customer_through_the_credited_guide_once(
        shop: Stack) -> None:
    # wangfang first: the exclusive guide; the serum card lina sent credits lina
    customer = await _add(shop, "wangfang", "张晓雨")
    await _add(shop, "lina", "张晓雨", customer)
    await _visit(shop, "lina", customer)
    assert (await _order(shop, "O-TAG-1", customer, SERUM, 29900))["guide"] == "lina"
    bought = await _tag_id(shop, BOUGHT)
    assert _marks(shop, customer) == [("lina", (bought,))]
    assert BOUGHT in _sandbox_tags(shop, customer, "lina")
    assert BOUGHT not in _sandbox_tags(shop, customer, "wangfang")
    assert BOUGHT in str(await _mirror(shop, customer))
    [due] = await _due(shop)
    assert due.outcome == "on_auto_tags_due" and due.processed_at is not None
    # the mark is a TagsMarked event: the SOP's tag_added trigger enrolls through lina
    async with shop.runtime.services.db.read() as s:
        enrolled = await sop_plan.find_enrollment(s, tenant="acme", sop_id="bought_care",
                                                  external_userid=customer, guide="lina")
    assert enrolled is not None and enrolled.status == "active"
    # a second serum order: staged, nothing marked again
    await _order(shop, "O-TAG-2", customer, SERUM, 29900)
    assert len(await _due(shop)) == 2
    assert _marks(shop, customer) == [("lina", (bought,))]
    # a refund takes no tag off
    status, body = await post_settled(shop, refunded("O-TAG-1", "R-TAG-1", [
        {"sku": SERUM, "amount_fen": 29900}]))
    assert status == 200, body
    await shop.runtime.drain()
    assert BOUGHT in _sandbox_tags(shop, customer, "lina")
    assert [c for c in shop.calls("externalcontact/mark_tag") if c["body"].get("remove_tag")
            and c["body"]["external_userid"] == customer] == []


async def test_an_order_under_min_paid_fen_tags_nothing(shop: Stack) -> None:
    customer = await _add(shop, "wangfang", "李雷")
    await _order(shop, "O-SMALL", customer, SCARF, 99999)  # a rule names neither
    assert await _due(shop) == [] and _marks(shop, customer) == []
    # the same scarf at the threshold: through the exclusive guide (credited or not)
    await _order(shop, "O-BIG", customer, SCARF, 100000)
    assert _marks(shop, customer) == [("wangfang", (await _tag_id(shop, BIG),))]
    assert BIG in _sandbox_tags(shop, customer, "wangfang")


async def test_the_console_lists_the_order_rules(shop: Stack) -> None:
    console = Console(shop)
    status, html, _ = await console.get(
        "/console/acme/content", headers={"Authorization": "Bearer acme-admin-token"})
    await console.close()
    assert status == 200
    assert html.count('data-rule="on_order"') == 2
    assert "实付不低于 ¥1,000.00" in html and "SKU 为 SKU-SERUM-02" in html


async def test_an_order_of_a_customer_who_follows_no_guide_tags_nothing(shop: Stack) -> None:
    await _order(shop, "O-STRANGER", "wmORDERstranger01", SERUM, 29900)
    [due] = await _due(shop)  # staged (a customer id), handled, nothing marked
    assert due.outcome == "on_auto_tags_due" and due.processed_at is not None
    assert shop.calls("externalcontact/mark_tag") == []


async def test_enabled_false_stages_nothing_for_orders(aiohttp_server: Any, tmp_path: Path,
                                                       db_url: str) -> None:
    stack = await start_stack(aiohttp_server, tmp_path, db_url, library=_library(tmp_path),
                              config_extra="\n[tenants.acme.auto_tags]\nenabled = false\n")
    try:
        customer = await _add(stack, "lina", "王芳")
        await _order(stack, "O-OFF", customer, SERUM, 200000)
        assert await _due(stack) == [] and _marks(stack, customer) == []
    finally:
        await stack.http.close()


async def test_an_order_recorded_through_order_service_paid_tags_like_the_webhook(
        shop: Stack) -> None:
    """OrderService.paid (the per-order path tests and the benchmark use) stages the order's
    `[[on_order]]` tags in the transaction recording it, as the webhook intake does: once."""
    customer = await _add(shop, "wangfang", "韩梅")
    commerce = shop.runtime.services.commerce
    order = PaidOrder("O-SVC-1", datetime.now(UTC), CustomerRef(customer), "", "S01",
                      (Item(SERUM, "", 120000),))
    outcome = await commerce.orders.paid(shop.tenant(), order, resolve_remote=False)
    assert outcome.status == "recorded", outcome.body
    [due] = await _due(shop)  # staged with the order, before any drain
    await shop.runtime.drain()
    marks = _marks(shop, customer)  # through the exclusive guide, each tag once
    assert {guide for guide, _ in marks} == {"wangfang"}, marks
    assert sorted(t for _, tags in marks for t in tags) == sorted(
        [await _tag_id(shop, BOUGHT), await _tag_id(shop, BIG)]), marks
    assert {BOUGHT, BIG} <= _sandbox_tags(shop, customer, "wangfang")
    assert {BOUGHT, BIG} <= set(await _mirror(shop, customer))
    again = await commerce.orders.paid(shop.tenant(), order, resolve_remote=False)
    assert again.status == "duplicate" and len(await _due(shop)) == 1


async def test_order_service_paid_wakes_the_inbox_after_its_commit(
        aiohttp_server: Any, tmp_path: Path, db_url: str) -> None:
    """With a poll of an hour the tags are marked only because paid woke the processor."""
    stack = await start_stack(aiohttp_server, tmp_path, db_url, library=_library(tmp_path),
                              inbox=LONG_POLL)
    try:
        customer = await _add(stack, "wangfang", "韩梅")
        await asyncio.sleep(0.2)  # the drain's last wake-up spent: the processor waits
        order = PaidOrder("O-WAKE-1", datetime.now(UTC), CustomerRef(customer), "", "S01",
                          (Item(SERUM, "", 120000),))
        outcome = await stack.runtime.services.commerce.orders.paid(
            stack.tenant(), order, resolve_remote=False)
        assert outcome.status == "recorded", outcome.body
        async with asyncio.timeout(HANG_GUARD_S):  # no drain: only the wake-up claims it
            while len(_marks(stack, customer)) < 2:
                await asyncio.sleep(0.02)
        assert {BOUGHT, BIG} <= _sandbox_tags(stack, customer, "wangfang")
        await stack.runtime.drain()  # the outcome is recorded with its batch
        [due] = await _due(stack)
        assert due.outcome == "on_auto_tags_due"
    finally:
        await stack.http.close()
