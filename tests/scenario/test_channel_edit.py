"""换人不换码 over HTTP against the sandbox: HQ changes a channel code's guides, limit,
backups, campaign or tags (new members asked of WeCom with update_contact_way first; a
refusal changes nothing), a single-guide code stays single; deleting a code deletes it in
WeCom and keeps it listed; the console's code page does the same. A 获客助手 link's members
and name change with update_link (test_channel_link_edit.py)."""

from __future__ import annotations

import re
from typing import Any

from tests.support.console import Console, csrf_in
from tests.support.stack import Stack, known


async def _create(stack: Stack, body: dict[str, Any]) -> dict[str, Any]:
    status, code = await stack.admin("/channels", method="POST", json=body)
    assert status == 201, code
    return code


async def _patch(stack: Stack, code_id: int, body: dict[str, Any]) -> tuple[int, Any]:
    return await stack.admin(f"/channels/{code_id}", method="PATCH", json=body)


def _updates(stack: Stack) -> list[dict[str, Any]]:
    return [c["body"] for c in stack.calls("externalcontact/update_contact_way")]


def _offered(stack: Stack, config_id: str) -> list[str]:
    return list(stack.sandbox.tenant("acme").contact_ways[config_id].body["user"])


async def _fault(stack: Stack, path: str) -> None:
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/faults", json={
            "tenant": "acme", "path": path, "errcode": 40001, "times": 1}) as answer:
        assert answer.status == 200


async def test_guides_change_and_the_code_stays(stack: Stack) -> None:
    await known(stack, guides=("lina", "wang", "zhou"))
    code = await _create(stack, {"guides": ["lina", "wang"], "campaign": "门店"})
    status, changed = await _patch(stack, code["id"], {"guides": ["wang", "zhou"]})
    assert status == 200, changed
    assert (changed["guides"], changed["serving"], changed["state"]) == (
        ["wang", "zhou"], ["wang", "zhou"], code["state"])
    assert [u["user"] for u in _updates(stack)] == [["wang", "zhou"]]
    assert _updates(stack)[0]["state"] == code["state"]
    assert _offered(stack, code["config_id"]) == ["wang", "zhou"]
    added = await stack.sandbox.simulate_add_contact("acme", config_id=code["config_id"],
                                                     name="王芳")
    await stack.runtime.drain()
    _, customer = await stack.admin(f"/customers/{added['external_userid']}")
    assert customer["channel"]["campaign"] == "门店"  # the same state: attributed to the code

    status, same = await _patch(stack, code["id"], {"welcome_message": "welcome_double11"})
    assert status == 200 and same["welcome_message"] == "welcome_double11"
    assert len(_updates(stack)) == 1  # guidebot's own fields: nothing asked of WeCom
    status, renamed = await _patch(stack, code["id"], {"campaign": "双12"})
    assert status == 200 and _updates(stack)[-1]["remark"] == "双12"  # the remark follows

    status, refused = await _patch(stack, code["id"], {"daily_limit": 1})
    assert status == 400 and refused["field"] == "backup_guides", refused
    status, limited = await _patch(stack, code["id"], {"daily_limit": 1,
                                                       "backup_guides": ["lina"]})
    assert status == 200, limited
    assert limited["serving"] == ["zhou"]  # wang added one today through it: at the limit
    assert _offered(stack, code["config_id"]) == ["zhou"]
    _, listed = await stack.admin("/channels")
    [now] = [c for c in listed["channels"] if c["id"] == code["id"]]
    assert now["adds_today"] == {"wang": 1}
    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        _, html, _ = await console.get("/console/acme/channels")
        row = re.search(rf'data-channel="{code["id"]}".*?</tr>', html, re.S)
        assert row and re.search(r'data-today="wang"[^>]*>1/1<', row.group(0)), html
        assert re.search(r'data-today="zhou"[^>]*>0/1<', row.group(0))
    finally:
        await console.close()

    await _fault(stack, "externalcontact/update_contact_way")
    status, failed = await _patch(stack, code["id"], {"guides": ["zhou"]})
    assert status == 502, failed
    _, listed = await stack.admin("/channels")
    [now] = [c for c in listed["channels"] if c["id"] == code["id"]]
    assert now["guides"] == ["wang", "zhou"]  # nothing changed


async def test_a_single_code_stays_single(stack: Stack) -> None:
    await known(stack, guides=("lina", "wang", "zhou"))
    single = await _create(stack, {"guide": "lina"})
    status, refused = await _patch(stack, single["id"], {"guides": ["wang", "zhou"]})
    assert status == 400 and "made for one guide" in refused["reason"], refused
    status, moved = await _patch(stack, single["id"], {"guides": ["zhou"]})
    assert status == 200 and moved["guides"] == ["zhou"]
    assert _offered(stack, single["config_id"]) == ["zhou"]
    link = await _create(stack, {"guide": "lina", "kind": "link"})
    status, several = await _patch(stack, link["id"], {"guides": ["wang", "zhou"]})
    assert status == 200 and several["guides"] == ["wang", "zhou"]  # a link is never type 1
    for path, code in (("/channels/999", 404), ("/channels/0", 400)):
        status, _ = await stack.admin(path, method="PATCH", json={"campaign": "x"})
        assert status == code, path
    status, _ = await stack.admin(f"/channels/{single['id']}", method="PATCH",
                                  json={"campaign": "x"}, tenant="beta",
                                  token="beta-admin-token")
    assert status == 404  # another tenant's code does not exist for beta


async def test_a_deleted_code_is_gone_in_wecom_and_stays_listed(stack: Stack) -> None:
    await known(stack, guides=("lina",))
    code = await _create(stack, {"guide": "lina", "campaign": "双11"})
    link = await _create(stack, {"guide": "lina", "kind": "link"})
    status, deleted = await stack.admin(f"/channels/{code['id']}", method="DELETE")
    assert status == 200 and deleted["deleted_at"], deleted
    assert [c["body"] for c in stack.calls("externalcontact/del_contact_way")] == [
        {"config_id": code["config_id"]}]
    assert code["config_id"] not in stack.sandbox.tenant("acme").contact_ways
    status, again = await stack.admin(f"/channels/{code['id']}", method="DELETE")
    assert status == 200 and len(stack.calls("externalcontact/del_contact_way")) == 1
    status, _ = await _patch(stack, code["id"], {"campaign": "x"})
    assert status == 404
    status, _ = await stack.admin(f"/channels/{link['id']}", method="DELETE")
    assert status == 200
    [gone] = stack.calls("externalcontact/customer_acquisition/delete_link")
    assert gone["body"] == {"link_id": link["config_id"]}
    _, listed = await stack.admin("/channels")
    assert all(c["deleted_at"] for c in listed["channels"])


async def test_the_console_changes_and_deletes_a_code(stack: Stack) -> None:
    await known(stack, guides=("lina", "wang"))
    code = await _create(stack, {"guide": "lina", "campaign": "门店"})
    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        status, html, _ = await console.get(f"/console/acme/channels/{code['id']}")
        assert status == 200 and "换人不换码" in html, html
        form = {"_csrf": csrf_in(html), "guide": "wang", "store": "", "campaign": "门店二",
                "welcome": "", "daily_limit": "0"}
        status, _, resp = await console.post(f"/console/acme/channels/{code['id']}", form)
        assert status == 303, status
        status, html, _ = await console.get(resp.headers["Location"])
        assert "已保存修改" in html and "门店二" in html
        facts = re.search(r'data-col="guides">(.*?)</dd>', html, re.S)
        assert facts and "wang" in facts.group(1) and "lina" not in facts.group(1)
        status, refused, _ = await console.post(f"/console/acme/channels/{code['id']}",
                                                {**form, "daily_limit": "2"})
        assert status == 400 and "请选择备用导购" in refused
        status, _, resp = await console.post(
            f"/console/acme/channels/{code['id']}/delete", {"_csrf": form["_csrf"]})
        assert status == 303
        status, html, _ = await console.get(resp.headers["Location"])
        assert 'id="deleted"' in html and "save-channel" not in html
        status, html, _ = await console.get("/console/acme/channels/999")
        assert status == 404 and "没有编号为 999 的渠道活码" in html
    finally:
        await console.close()
