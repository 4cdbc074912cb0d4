"""立即发送 over HTTP: HQ sends a content drop now from the admin API or the console's content
page, whatever its schedule; a key (the console's form carries one per page view) makes the
firing once; an unknown drop is 404 and a malformed id 400."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.console import Console, csrf_in
from tests.support.stack import Stack, stack_with

DATA = Path(__file__).resolve().parents[1] / "data" / "sop"


@pytest.fixture
async def fire_stack(aiohttp_server: Any, tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    stack = await stack_with(aiohttp_server, tmp_path, db_url,
                             {"drops/quota_drop.toml": DATA / "quota_drop.toml"})
    yield stack
    await stack.http.close()


def _sends(stack: Stack) -> list[list[str]]:
    return [c["body"]["external_userid"]
            for c in stack.calls("externalcontact/add_msg_template")]


async def test_a_drop_is_sent_now_once_per_key(fire_stack: Stack) -> None:
    stack = fire_stack
    added = await stack.sandbox.simulate_add_contact("acme", userid="lina", name="陈思")
    await stack.runtime.drain()
    customer = str(added["external_userid"])
    status, fired = await stack.admin("/drops/quota_drop/fire", method="POST",
                                      json={"key": "hq-2026-12-06"})
    assert status == 200 and (fired["drop"], fired["tasks"]) == ("quota_drop", 1), fired
    status, again = await stack.admin("/drops/quota_drop/fire", method="POST",
                                      json={"key": "hq-2026-12-06"})
    assert status == 200 and again["tasks"] == 0 and again["firing"] == fired["firing"]
    await stack.runtime.services.sop.tick("acme")
    assert _sends(stack) == [[customer]]
    status, other = await stack.admin("/drops/quota_drop/fire", method="POST", json={})
    # a firing of its own, but the customer's 群发 quota for the day (1) is used: left out
    assert status == 200 and other["tasks"] == 0 and other["firing"] != fired["firing"]

    for path, body, code, field in (
            ("/drops/nosuch/fire", {}, 404, "drop_id"),
            ("/drops/Bad%20Id/fire", {}, 400, "drop_id"),
            ("/drops/quota_drop/fire", {"key": "has space"}, 400, "key")):
        status, answer = await stack.admin(path, method="POST", json=body)
        assert status == code and answer["field"] == field, (path, answer)
    status, answer = await stack.admin("/drops/quota_drop/fire", method="POST", json={},
                                       tenant="beta", token="beta-admin-token")
    assert status == 200 and answer["tasks"] == 0, answer  # beta has no such customers
    _, tasks = await stack.admin("/tasks")
    drops = [t for t in tasks["tasks"]
             if (t["source"], t["kind"]) == ("drop:quota_drop", "guide_task")]
    assert len(drops) == 1 and len(_sends(stack)) == 1


async def test_the_console_sends_a_drop_now(fire_stack: Stack) -> None:
    stack = fire_stack
    await stack.sandbox.simulate_add_contact("acme", userid="lina", name="林悦")
    await stack.runtime.drain()
    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        status, html, _ = await console.get("/console/acme/content")
        assert status == 200 and "立即发送" in html
        row = re.search(r'data-drop="quota_drop".*?</tr>', html, re.S)
        assert row, html
        key = re.search(r'name="key" value="([^"]+)"', row.group(0))
        assert key
        form = {"_csrf": csrf_in(html), "key": key.group(1)}
        status, _, resp = await console.post("/console/acme/drops/quota_drop/fire", form)
        assert status == 303 and "tasks=1" in resp.headers["Location"], resp.headers
        status, page, _ = await console.get(resp.headers["Location"])
        assert page.count("已立即发送「quota_drop」：生成 1 个任务") == 1  # said once
        status, _, resp = await console.post("/console/acme/drops/quota_drop/fire", form)
        assert status == 303 and "tasks=0" in resp.headers["Location"]  # the same click
        status, refused, _ = await console.post("/console/acme/drops/nosuch/fire", form)
        assert status == 404 and "内容库中没有投放 nosuch" in refused, refused
    finally:
        await console.close()
