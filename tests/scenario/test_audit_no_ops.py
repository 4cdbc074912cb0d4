"""操作日志 and the writes that may change nothing: 立即发送 clicked twice with one key, 停止群发
with nothing left to stop, 预打标签 imported again, each answered as before and adding no row,
while the real write on the same route adds one; an empty 预打标签 file is a worded refusal.
And a 更换群主 / 群继承 whose WeCom call failed says it is queued for a retry (never
"errcode None")."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.audit import raw_rows
from tests.support.console import Console, csrf_in
from tests.support.groups import add_customer, leavers_group
from tests.support.pretags import upload as _upload
from tests.support.stack import Stack, stack_with

DATA = Path(__file__).resolve().parents[1] / "data" / "sop"
T0 = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai: no quiet hours near
API = "POST /api/v1/{tenant}"
CONSOLE = "POST /console/{tenant}"


@pytest.fixture
async def drop_stack(aiohttp_server: Any, tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    stack = await stack_with(aiohttp_server, tmp_path, db_url,
                             {"drops/stop_drop.toml": DATA / "stop_drop.toml",
                              "sops/flash.toml": DATA / "flash.toml"})
    stack.runtime.services.sop.clock = lambda: T0
    yield stack
    await stack.http.close()


async def _count(stack: Stack, route: str) -> int:
    return [str(r["action"]) for r in await raw_rows(stack)].count(route)


async def _signed_in(stack: Stack) -> Console:
    console = Console(stack)
    assert (await console.login("acme", "acme-admin-token")).status == 303
    return console


async def test_a_drop_fired_again_with_its_key_is_not_recorded(drop_stack: Stack) -> None:
    stack = drop_stack
    await add_customer(stack, "lina", "陈思")
    route = f"{API}/drops/{{drop_id}}/fire"
    status, fired = await stack.admin("/drops/stop_drop/fire", method="POST",
                                      json={"key": "hq-fire-1"})
    assert status == 200 and fired["tasks"] == 1, fired
    assert await _count(stack, route) == 1
    status, again = await stack.admin("/drops/stop_drop/fire", method="POST",
                                      json={"key": "hq-fire-1"})
    assert status == 200 and again == {**fired, "tasks": 0}, again  # answered as ever
    assert await _count(stack, route) == 1
    status, other = await stack.admin("/drops/stop_drop/fire", method="POST",
                                      json={"key": "hq-fire-2"})  # another firing
    assert status == 200 and other["firing"] != fired["firing"], other
    assert await _count(stack, route) == 2

    console = await _signed_in(stack)
    route = f"{CONSOLE}/drops/{{drop_id}}/fire"
    try:
        _, html, _ = await console.get("/console/acme/content")
        row = re.search(r'data-drop="stop_drop".*?</tr>', html, re.S)
        assert row, html
        key = re.search(r'name="key" value="([^"]+)"', row.group(0))
        assert key, row.group(0)
        form = {"_csrf": csrf_in(html), "key": key.group(1)}
        for _ in range(2):  # a double click; the customer's quota for the day is used
            status, _, resp = await console.post("/console/acme/drops/stop_drop/fire", form)
            assert status == 303 and "tasks=0" in resp.headers["Location"], resp.headers
        assert await _count(stack, route) == 1  # the second click did nothing
    finally:
        await console.close()


async def test_a_stop_with_nothing_left_to_stop_is_not_recorded(drop_stack: Stack) -> None:
    stack = drop_stack
    await add_customer(stack, "lina", "陈思")
    _, fired = await stack.admin("/drops/stop_drop/fire", method="POST", json={})
    route = f"{API}/drops/{{drop_id}}/stop"
    status, stopped = await stack.admin("/drops/stop_drop/stop", method="POST",
                                        json={"firing": fired["firing"]})
    assert status == 200 and stopped["not_sent"] == 1, stopped
    assert await _count(stack, route) == 1
    status, again = await stack.admin("/drops/stop_drop/stop", method="POST",
                                      json={"firing": fired["firing"]})
    assert status == 200 and (again["not_sent"], again["cancelled_in_wecom"]) == (0, 0), again
    assert await _count(stack, route) == 1

    _, second = await stack.admin("/drops/stop_drop/fire", method="POST", json={"key": "b"})
    assert second["tasks"] == 1, second  # the stop freed the customer's quota
    console = await _signed_in(stack)
    route = f"{CONSOLE}/drops/{{drop_id}}/stop"
    try:
        _, html, _ = await console.get("/console/acme/drops/stop_drop")
        form = {"_csrf": csrf_in(html), "firing": fired["firing"]}
        status, _, resp = await console.post("/console/acme/drops/stop_drop/stop", form)
        assert status == 303 and "not_sent=0" in resp.headers["Location"], resp.headers
        assert await _count(stack, route) == 0  # stopped before: nothing left
        status, _, resp = await console.post("/console/acme/drops/stop_drop/stop",
                                             {**form, "firing": second["firing"]})
        assert status == 303 and resp.headers["Location"], resp.headers
        assert await _count(stack, route) == 1
    finally:
        await console.close()


async def test_a_step_stop_with_nothing_left_is_not_recorded(drop_stack: Stack) -> None:
    stack = drop_stack
    sop = stack.runtime.services.sop
    customer = await add_customer(stack, "lina", "陈思")
    status, body = await stack.admin("/sops/flash/enroll", method="POST", json={
        "external_userid": customer, "guide": "lina"})
    assert status == 201, body
    route = f"{API}/sops/{{sop_id}}/stop"
    status, stopped = await stack.admin("/sops/flash/stop", method="POST", json={"step": 1})
    assert status == 200 and stopped["not_sent"] == 0, stopped  # no task made yet
    assert await _count(stack, route) == 0
    sop.clock = lambda: T0 + timedelta(minutes=2)
    await sop.plan("acme")
    await sop.dispatcher.batch("acme")  # the step's task made, not yet handed to WeCom
    status, stopped = await stack.admin("/sops/flash/stop", method="POST", json={"step": 1})
    assert status == 200 and stopped["not_sent"] == 1, stopped
    assert await _count(stack, route) == 1

    console = await _signed_in(stack)
    route = f"{CONSOLE}/sops/{{sop_id}}/stop"
    try:
        _, html, _ = await console.get("/console/acme/sops/flash")
        status, _, resp = await console.post("/console/acme/sops/flash/stop",
                                             {"_csrf": csrf_in(html), "step": "1"})
        assert status == 303 and "not_sent=0" in resp.headers["Location"], resp.headers
        assert await _count(stack, route) == 0
    finally:
        await console.close()


async def test_pretags_imported_again_are_not_recorded_an_empty_file_refused(
        stack: Stack) -> None:
    console = await _signed_in(stack)
    route = f"{CONSOLE}/pretags"
    try:
        _, html, _ = await console.get("/console/acme/tags")
        csrf = csrf_in(html)
        for empty in ("", "unionid,tags\n\n"):
            status, page, _ = await _upload(console, csrf, empty)
            assert status == 400 and "文件中没有可导入的行" in page, page
        assert await _count(stack, route) == 0
        csv = "unionid,tags\noUNION-A,护肤兴趣\n"
        status, _, location = await _upload(console, csrf, csv)
        assert status == 303 and "stored=1" in location, location
        assert await _count(stack, route) == 1
        status, _, location = await _upload(console, csrf, csv)  # the same file again
        assert status == 303, location
        _, page, _ = await console.get(location)
        assert "这些预打标签都已导入过" in page and "新增 0 条" not in page, page
        assert await _count(stack, route) == 1
    finally:
        await console.close()

    route = f"{API}/pretags"
    body = {"lines": [{"unionid": "oUNION-B", "tags": ["护肤兴趣"]}], "key": "pt-1"}
    status, made = await stack.admin("/pretags", method="POST", json=body)
    assert status == 201 and made["stored"] == 1, made
    status, replayed = await stack.admin("/pretags", method="POST", json=body)
    assert status == 200 and replayed == made, replayed  # the key's stored answer
    status, again = await stack.admin("/pretags", method="POST",
                                      json={"lines": body["lines"]})  # no key: none new
    assert status == 201 and again["stored"] == 0, again
    status, refused = await stack.admin("/pretags", method="POST", json={"lines": []})
    assert status == 400 and refused["field"] == "lines", refused
    assert await _count(stack, route) == 1


async def _fail_calls(stack: Stack, path: str) -> None:
    """WeCom answers `path` with system busy (-1) for a while: the outbox retries it."""
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/faults", json={
            "tenant": "acme", "path": path, "errcode": -1, "times": 50}) as resp:
        assert resp.status == 200, await resp.text()


async def test_a_hand_over_whose_call_failed_says_it_is_queued(stack: Stack) -> None:
    customer = await add_customer(stack, "lina", "王芳")
    await add_customer(stack, "mia", "李雷")
    created = await stack.sandbox.create_group("acme", "lina", name="会员群",
                                               members=[customer])
    chat = str(created["chat_id"])
    await stack.runtime.drain()
    await _fail_calls(stack, "externalcontact/groupchat/onjob_transfer")
    console = await _signed_in(stack)
    try:
        _, page, _ = await console.get(f"/console/acme/groups/{chat}")
        status, _, resp = await console.post(f"/console/acme/groups/{chat}/owner", {
            "_csrf": csrf_in(page), "new_owner": "mia"})
        assert status == 303 and resp.headers["Location"].endswith("?queued=1"), resp.headers
        _, page, _ = await console.get(resp.headers["Location"])
        assert "已排队重试" in page and "None" not in page, page
        assert await _count(stack, f"{CONSOLE}/groups/{{chat_id}}/owner") == 1  # queued
    finally:
        await console.close()


async def test_a_group_inheritance_whose_call_failed_says_it_is_queued(stack: Stack) -> None:
    await leavers_group(stack)
    await _fail_calls(stack, "externalcontact/groupchat/transfer")
    console = await _signed_in(stack)
    try:
        _, html, _ = await console.get("/console/acme/transfers")
        status, _, resp = await console.post("/console/acme/transfers/groups", {
            "_csrf": csrf_in(html), "handover": "ahui", "new_owner": "qing"})
        assert status == 303, resp.headers
        assert resp.headers["Location"].endswith("?groups=0&failed=0&queued=1")
        _, page, _ = await console.get(resp.headers["Location"])
        assert "未能继承 0 个" in page and "另有 1 个群的调用失败：已排队重试" in page, page
    finally:
        await console.close()


async def test_a_transfer_replayed_with_its_key_is_recorded_once(stack: Stack) -> None:
    customer = await add_customer(stack, "lina", "王芳")
    await add_customer(stack, "mia", "李雷")  # mia: an active guide to take over
    body = {"kind": "on_job", "handover": "lina", "takeover": "mia",
            "external_userids": [customer], "key": "move-1"}
    status, made = await stack.admin("/transfers", method="POST", json=body)
    assert status == 201, made
    status, again = await stack.admin("/transfers", method="POST", json=body)
    assert status == 200 and again["id"] == made["id"], again
    assert await _count(stack, f"{API}/transfers") == 1
