"""操作日志 records what was done: on each route where a request could answer < 400 and change
nothing, such an answer (a refusal, now 4xx; a read; a replay; a batch refused throughout) adds
no row, and a real write on the same route adds one. And every write route of the router is
classified: recorded, or listed in audit_trail.NOT_WRITES with why."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from guidebot.db.repo import segment_runs
from guidebot.db.types import utcnow
from guidebot.sandbox.group_transfers import DAILY_MAX
from guidebot.web.audit_trail import NOT_WRITES, WRITES, audited
from tests.support.audit import raw_rows, router_routes
from tests.support.console import Console, csrf_in
from tests.support.groups import add_customer, leavers_group
from tests.support.stack import Stack

API = "POST /api/v1/{tenant}"
CONSOLE = "POST /console/{tenant}"

# Write routes outside /api/v1/{tenant}/ and /console/{tenant}/: not 操作日志's, each with why.
ELSEWHERE = {
    "POST /wecom/{tenant}/callback": "WeCom's callbacks: the inbox keeps them",
    "POST /orders/{tenant}": "the store's signed orders webhook, not HQ's action",
    "POST /console/login": "sign-in: recorded by the console's own code (sign_in, refused)",
    "POST /console/logout": "sign-out: recorded by the console's own code (sign_out)",
    "POST /operator/login": "the operator's usage page, no tenant's",
    "POST /operator/logout": "the operator's usage page, no tenant's",
}
SIDEBAR = "/sidebar/{tenant}/"  # guides' own writes from the chat toolbar, not HQ's
# Paths that sound like reads: each must be in NOT_WRITES or here, saying why it writes.
READ_LIKE = re.compile(r"/(quota|check|count|preview|export|dry-run|personal-data|sync)$")
READ_LIKE_WRITES = {
    "POST /console/{tenant}/transfers/check": "查询结果 applies WeCom's transfer results",
    "POST /console/{tenant}/groups/sync": "同步客户群 writes the groups WeCom lists",
    "POST /api/v1/{tenant}/groups/sync": "as the console's 同步客户群",
    "POST /console/{tenant}/customers/{external_userid}/personal-data":
        "查阅复制 hands out personal data: recorded as an access on purpose",
}


def test_every_write_route_is_recorded_or_listed_as_not_a_write(tmp_path: Path) -> None:
    routes = router_routes(tmp_path, WRITES)
    assert len(routes) > 80  # the router was read
    assert set(NOT_WRITES) <= set(routes), set(NOT_WRITES) - set(routes)  # none stale
    assert all(reason.strip() for reason in NOT_WRITES.values())
    unclassified = [r for r in routes if not audited(*r.split(" ", 1))
                    and r not in NOT_WRITES and r not in ELSEWHERE
                    and not r.split(" ", 1)[1].startswith(SIDEBAR)]
    assert unclassified == []  # a new write route outside 操作日志: say why in ELSEWHERE
    assert set(ELSEWHERE) <= set(routes)
    read_like = [r for r in routes if READ_LIKE.search(r) and r not in NOT_WRITES
                 and r not in READ_LIKE_WRITES]
    assert read_like == []  # a read by POST: list it in NOT_WRITES, or here why it writes
    for route in NOT_WRITES:
        assert not audited(*route.split(" ", 1))


async def _actions(stack: Stack) -> list[str]:
    return [str(r["action"]) for r in await raw_rows(stack)]


async def _signed_in(stack: Stack) -> Console:
    console = Console(stack)
    assert (await console.login("acme", "acme-admin-token")).status == 303
    return console


async def test_a_refused_group_hand_over_is_409_and_not_recorded(stack: Stack) -> None:
    customer = await add_customer(stack, "lina", "王芳")
    await add_customer(stack, "mia", "李雷")  # another active guide
    created = await stack.sandbox.create_group("acme", "lina", name="会员群",
                                               members=[customer])
    chat = str(created["chat_id"])
    await stack.runtime.drain()
    console = await _signed_in(stack)
    route = f"{CONSOLE}/groups/{{chat_id}}/owner"
    try:
        _, page, _ = await console.get(f"/console/acme/groups/{chat}")
        form = {"_csrf": csrf_in(page), "new_owner": "mia"}
        status, _, resp = await console.post(f"/console/acme/groups/{chat}/owner", form)
        assert status == 303 and resp.headers["Location"].endswith("?handed=1")
        assert (await _actions(stack)).count(route) == 1
        await stack.runtime.drain()
        status, refused, _ = await console.post(f"/console/acme/groups/{chat}/owner", form)
        assert status == 409 and "90504" in refused, refused  # 群主没变
        assert 'name="new_owner"' not in refused and "企业微信未能更换群主" in refused
        assert (await _actions(stack)).count(route) == 1
    finally:
        await console.close()
    api = f"{API}/groups/transfer"
    for new_owner, transferred in (("mia", []), ("lina", [chat])):  # 90504, then done
        status, body = await stack.admin("/groups/transfer", method="POST", json={
            "chat_ids": [chat], "new_owner": new_owner, "kind": "on_job"})
        assert status == 200 and body["transferred"] == transferred, body
        assert (await _actions(stack)).count(api) == len(transferred)


async def test_groups_every_one_refused_are_409_or_unrecorded(stack: Stack) -> None:
    _, chat = await leavers_group(stack)
    before = await _actions(stack)
    # the API: an on-job hand-over of a leaver's group, refused by WeCom (90502): 200, no row
    status, body = await stack.admin("/groups/transfer", method="POST", json={
        "chat_ids": [chat], "new_owner": "qing", "kind": "on_job"})
    assert status == 200 and body["transferred"] == [] and body["failed"], body
    assert await _actions(stack) == before

    console = await _signed_in(stack)
    route = f"{CONSOLE}/transfers/groups"
    try:
        _, html, _ = await console.get("/console/acme/transfers")
        handed = stack.sandbox.tenant("acme").groups.handed_over.setdefault("ahui", [])
        handed += [int(stack.sandbox.now())] * DAILY_MAX  # WeCom's 300 a day: refused
        form = {"_csrf": csrf_in(html), "handover": "ahui", "new_owner": "qing"}
        status, refused, _ = await console.post("/console/acme/transfers/groups", form)
        assert status == 409 and "企业微信拒绝了全部 1 个群的继承" in refused, refused
        assert route not in await _actions(stack)
        handed.clear()  # a new day
        status, _, resp = await console.post("/console/acme/transfers/groups", form)
        assert status == 303 and resp.headers["Location"].endswith("?groups=1&failed=0")
        assert (await _actions(stack)).count(route) == 1
    finally:
        await console.close()


async def _material(stack: Stack, title: str) -> str:
    status, body = await stack.admin("/materials", method="POST",
                                     json={"title": title, "text": f"{title}的文案"})
    assert status == 201, body
    return str(body["id"])


async def test_a_review_that_did_nothing_is_refused_or_unrecorded(stack: Stack) -> None:
    first, second = await _material(stack, "春季新品"), await _material(stack, "通勤围巾")
    before = await _actions(stack)
    status, body = await stack.admin("/materials/review", method="POST", json={
        "ids": ["no-such"], "action": "approve", "grade": "B"})
    assert status == 200 and [r["ok"] for r in body["results"]] == [False], body
    assert await _actions(stack) == before  # every one refused: nothing done
    status, body = await stack.admin("/materials/review", method="POST", json={
        "ids": [first, "no-such"], "action": "approve", "grade": "B"})
    assert status == 200 and [r["ok"] for r in body["results"]] == [True, False], body
    assert (await _actions(stack)).count(f"{API}/materials/review") == 1

    console = await _signed_in(stack)
    route = f"{CONSOLE}/materials/review"
    try:
        _, html, _ = await console.get("/console/acme/materials")
        csrf = csrf_in(html)
        route_path = "/console/acme/materials/review"
        status, refused, _ = await console.post(route_path, {"_csrf": csrf, "action": "approve"})
        assert status == 400 and "请先勾选素材并选择操作" in refused, refused
        status, refused, _ = await console.post(route_path, {
            "_csrf": csrf, "action": "approve", "id": second, "grade": ""})
        assert status == 409 and "1 条素材均未能处理" in refused, refused
        assert route not in await _actions(stack)
        status, _, resp = await console.post(route_path, {
            "_csrf": csrf, "action": "approve", "id": second, "grade": "A"})
        assert status == 303 and "done=1" in resp.headers["Location"]
        assert (await _actions(stack)).count(route) == 1
    finally:
        await console.close()


async def test_a_second_tagging_run_while_one_is_staging_is_409_unrecorded(
        stack: Stack) -> None:
    await stack.runtime.services.tags.sync("acme")
    _, body = await stack.admin("/tags")
    staging_tag, other_tag = [t["id"] for g in body["groups"] for t in g["tags"]][:2]
    status, segment = await stack.admin("/segments", method="POST",
                                        json={"name": "全部", "conditions": {}})
    assert status == 201, segment
    # a run for the first tag still staging (left by a stopped process, its lease out), so
    # the refusal does not hang on how fast a fresh run stages
    async with stack.runtime.services.db.write() as s:
        await segment_runs.insert(
            s, tenant="acme", segment_id=segment["id"], tag_id=staging_tag, tag="t",
            operator="api", owner="stopped:1", lease_until=utcnow() - timedelta(minutes=1),
            now=utcnow())
    path = f"/console/acme/segments/{segment['id']}/tag"
    route = f"{CONSOLE}/segments/{{segment_id}}/tag"
    console = await _signed_in(stack)
    try:
        _, html, _ = await console.get(f"/console/acme/segments/{segment['id']}")
        status, refused, _ = await console.post(path, {"_csrf": csrf_in(html),
                                                       "tag_id": staging_tag})
        assert status == 409 and "仍在排队中" in refused, refused
        assert route not in await _actions(stack)
        status, _, resp = await console.post(path, {"_csrf": csrf_in(html),
                                                    "tag_id": other_tag})
        assert status == 303 and "run_started=" in resp.headers["Location"]
        assert (await _actions(stack)).count(route) == 1
    finally:
        await console.close()


async def test_reading_the_quota_is_not_recorded(stack: Stack) -> None:
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/acme/acquisition/quota",
                               json={"total": 1000, "balance": 600}) as answer:
        assert answer.status == 200
    console = await _signed_in(stack)
    try:
        _, html, _ = await console.get("/console/acme/channels")
        status, _, _ = await console.post("/console/acme/channels/quota",
                                          {"_csrf": csrf_in(html)})
        assert status == 303
        assert stack.calls("externalcontact/customer_acquisition_quota")
        status, _, resp = await console.post("/console/acme/channels", {
            "_csrf": csrf_in(html), "guide": "lina", "campaign": "c1"})
        assert status == 303 and "created=" in resp.headers["Location"]
        assert [a for a in await _actions(stack) if "/channels" in a] == [
            f"{CONSOLE}/channels"]
    finally:
        await console.close()


async def _twice(stack: Stack, path: str, body: dict[str, Any]) -> None:
    status, made = await stack.admin(path, method="POST", json=body)
    assert status == 201, made
    status, again = await stack.admin(path, method="POST", json=body)
    assert status == 200 and again == made, again


async def test_a_replayed_key_is_recorded_once(stack: Stack) -> None:
    await add_customer(stack, "lina", "陈思")
    await _twice(stack, "/channels", {"guide": "lina", "campaign": "c1", "key": "CH-1"})
    await _twice(stack, "/links", {"guide": "lina", "title": "卡片", "key": "LINK-1"})
    await _twice(stack, "/materials", {"id": "spring-1", "title": "春季", "text": "文案"})
    await _twice(stack, "/drops", {
        "title": "三月会员日", "channel": "guide_task", "message": "drop_double12_warmup",
        "audience": {"guides": ["lina"]}, "at": "now", "key": "march-1"})
    console = await _signed_in(stack)
    try:
        _, html, _ = await console.get("/console/acme/content")
        key = re.search(r'name="key" value="([^"]+-new)"', html)
        assert key, html
        form = {"_csrf": csrf_in(html), "title": "控制台群发", "channel": "guide_task",
                "message": "drop_double12_warmup", "material": "", "guides": "lina",
                "stores": "", "tags_any": "", "tags_all": "", "tags_none": "",
                "group_names": "", "when": "now", "at": "", "key": key.group(1)}
        for _ in range(2):  # a double click
            status, _, _ = await console.post("/console/acme/drops", form)
            assert status == 303
    finally:
        await console.close()
    actions = await _actions(stack)
    for route in (f"{API}/channels", f"{API}/links", f"{API}/materials", f"{API}/drops",
                  f"{CONSOLE}/drops"):
        assert actions.count(route) == 1, (route, actions)
