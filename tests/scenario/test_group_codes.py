"""群活码 (group join codes) over HTTP against the sandbox: HQ makes a code for live groups
(refused for bad input, and when WeCom refuses nothing is stored); a customer who joins
through it is counted under the code and their membership shows its state; the code's groups
change; it is deleted; another tenant sees none of it."""

from __future__ import annotations

import re
from typing import Any

from multidict import MultiDict
from sqlalchemy import func, select

from guidebot.contacts import state_codec
from guidebot.db.models_groups import GroupJoinCode
from tests.support.console import Console, csrf_in
from tests.support.stack import Stack

WAYS = "externalcontact/groupchat/"


async def _customer(stack: Stack, name: str) -> str:
    added = await stack.sandbox.simulate_add_contact("acme", userid="lina", name=name)
    await stack.runtime.drain()
    return str(added["external_userid"])


async def _group(stack: Stack, name: str, members: list[str]) -> str:
    created = await stack.sandbox.create_group("acme", "lina", name=name, members=members)
    await stack.runtime.drain()
    return str(created["chat_id"])


async def _codes(stack: Stack, query: str = "", tenant: str = "acme") -> dict[str, Any]:
    status, body = await stack.admin(f"/group-codes{query}", tenant=tenant)
    assert status == 200, body
    return body


async def _refuse_once(stack: Stack, api: str) -> None:
    """WeCom refuses the next call of groupchat/{api} with errcode 40058."""
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/faults", json={
            "tenant": "acme", "path": WAYS + api, "errcode": 40058, "times": 1}) as resp:
        assert resp.status == 200


async def _stored(stack: Stack) -> int:
    async with stack.runtime.services.db.read() as s:
        return int((await s.execute(select(func.count()).select_from(GroupJoinCode)))
                   .scalar_one())


async def test_a_code_for_live_groups_counts_the_joins_through_it(stack: Stack) -> None:
    first = await _customer(stack, "王芳")
    spring = await _group(stack, "春季新品群", [first])
    vip = await _group(stack, "VIP 群", [])
    status, made = await stack.admin("/group-codes", method="POST", json={
        "chat_ids": [spring], "campaign": "春季海报", "store": "sh-01"})
    assert status == 201, made
    assert made["state"] == state_codec.encode(made["id"], prefix=state_codec.GROUP_PREFIX)
    assert state_codec.decode(made["state"]) is None  # never read as a contact-add state
    assert made["qr_code"].startswith("https://") and made["config_id"]
    assert made["groups"] == [{"chat_id": spring, "name": "春季新品群"}]
    assert (made["campaign"], made["store"]) == ("春季海报", "sh-01")
    (sent,) = [c for c in stack.calls() if c["path"] == WAYS + "add_join_way"]
    assert sent["body"]["chat_id_list"] == [spring] and sent["body"]["state"] == made["state"]
    assert sent["body"]["remark"] == "春季海报" and sent["body"]["scene"] == 2

    second = await _customer(stack, "李雷")
    joined = await stack.sandbox.join_group_by_way("acme", made["config_id"], [second])
    assert joined["delivery"]["status"] == 200 and joined["chat_id"] == spring
    await stack.runtime.drain()
    status, detail = await stack.admin(f"/groups/{spring}")
    members = {m["member_id"]: m for m in detail["members"]}
    assert members[second]["join_scene"] == 3
    assert members[second]["join_state"] == made["state"]
    assert members[first]["join_state"] is None
    (listed,) = (await _codes(stack))["codes"]
    assert listed["joined"] == 1
    assert [(j["external_userid"], j["chat_id"], j["group_name"]) for j in listed["joins"]] == [
        (second, spring, "春季新品群")]
    # a plain QR join (no way) is not the code's
    third = await _customer(stack, "张伟")
    await stack.sandbox.join_group("acme", spring, [third], join_scene=3)
    await stack.runtime.drain()
    assert (await _codes(stack))["codes"][0]["joined"] == 1
    # a range before today counts nothing
    assert (await _codes(stack, "?from=2020-01-01&to=2020-01-31"))["codes"][0]["joined"] == 0

    # the groups change (换群不换码): the next scan lands in the new group
    status, changed = await stack.admin(f"/group-codes/{made['id']}", method="PATCH",
                                        json={"chat_ids": [vip, spring]})
    assert status == 200, changed
    assert [g["chat_id"] for g in changed["groups"]] == [vip, spring]
    assert changed["qr_code"] == made["qr_code"] and changed["state"] == made["state"]
    (update,) = [c for c in stack.calls() if c["path"] == WAYS + "update_join_way"]
    assert update["body"]["chat_id_list"] == [vip, spring]
    fourth = await _customer(stack, "赵敏")
    joined = await stack.sandbox.join_group_by_way("acme", made["config_id"], [fourth])
    assert joined["chat_id"] == vip
    await stack.runtime.drain()
    (listed,) = (await _codes(stack))["codes"]
    assert listed["joined"] == 2 and listed["joins"][0]["chat_id"] == vip

    # another tenant sees nothing of it
    assert (await _codes(stack, tenant="beta"))["codes"] == []
    status, _ = await stack.admin(f"/group-codes/{made['id']}", tenant="beta")
    assert status == 404
    status, _ = await stack.admin(f"/group-codes/{made['id']}", tenant="beta",
                                  method="DELETE")
    assert status == 404

    status, gone = await stack.admin(f"/group-codes/{made['id']}", method="DELETE")
    assert status == 200 and gone["deleted_at"]
    assert stack.sandbox.state("acme")["join_ways"] == []
    (listed,) = (await _codes(stack))["codes"]
    assert listed["deleted_at"] and listed["joined"] == 2  # kept with what it brought
    status, body = await stack.admin(f"/group-codes/{made['id']}", method="PATCH",
                                     json={"campaign": "x"})
    assert status == 404, body
    status, again = await stack.admin(f"/group-codes/{made['id']}", method="DELETE")
    assert status == 200 and again["deleted_at"] == gone["deleted_at"]
    assert len([c for c in stack.calls() if c["path"] == WAYS + "del_join_way"]) == 1


async def test_bad_groups_are_refused_and_a_wecom_refusal_stores_nothing(
        stack: Stack) -> None:
    live = await _group(stack, "会员群", [])
    dismissed = await _group(stack, "旧群", [])
    await stack.sandbox.dismiss_group("acme", dismissed)
    await stack.runtime.drain()
    others = [await _group(stack, f"群{i}", []) for i in range(5)]
    for body, field in [({"chat_ids": []}, "chat_ids"),
                        ({"chat_ids": [live, *others]}, "chat_ids"),
                        ({"chat_ids": [live, live]}, "chat_ids"),
                        ({"chat_ids": ["wrNOSUCH"]}, "chat_ids"),
                        ({"chat_ids": [dismissed]}, "chat_ids"),
                        ({"chat_ids": [live], "campaign": "长" * 31}, "campaign"),
                        ({"chat_ids": [live], "auto_create_room": True}, "room_base_name")]:
        status, refused = await stack.admin("/group-codes", method="POST", json=body)
        assert status == 400 and refused["field"] == field, (body, refused)
    # beta's view of acme's group: not one of beta's
    status, refused = await stack.admin("/group-codes", tenant="beta", method="POST",
                                        json={"chat_ids": [live]})
    assert status == 400 and "not a live customer group" in refused["reason"], refused
    assert not [c for c in stack.calls() if c["path"] == WAYS + "add_join_way"]

    await _refuse_once(stack, "add_join_way")
    status, refused = await stack.admin("/group-codes", method="POST",
                                        json={"chat_ids": [live]})
    assert status == 502 and "40058" in refused["reason"], refused
    assert await _stored(stack) == 0 and (await _codes(stack))["codes"] == []

    status, made = await stack.admin("/group-codes", method="POST", json={
        "chat_ids": [live], "auto_create_room": True, "room_base_name": "会员群",
        "room_base_id": 2})
    assert status == 201, made
    await _refuse_once(stack, "update_join_way")
    status, refused = await stack.admin(f"/group-codes/{made['id']}", method="PATCH",
                                        json={"chat_ids": others[:2]})
    assert status == 502, refused
    status, kept = await stack.admin(f"/group-codes/{made['id']}")
    assert [g["chat_id"] for g in kept["groups"]] == [live]
    status, refused = await stack.admin(f"/group-codes/{made['id']}", method="PATCH",
                                        json={"chat_ids": [dismissed]})
    assert status == 400, refused


async def test_console_makes_lists_and_deletes_group_codes(stack: Stack) -> None:
    first = await _customer(stack, "王芳")
    chat = await _group(stack, "门店会员群", [])
    other = await _group(stack, "门店二群", [])
    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        status, page, _ = await console.get("/console/acme/group-codes")
        assert status == 200 and 'id="new-group-code"' in page and "门店会员群" in page
        assert 'href="/console/acme/group-codes" aria-current="page"' in page
        csrf = csrf_in(page)
        status, html, _ = await console.post("/console/acme/group-codes", {"_csrf": csrf})
        assert status == 400 and "请选择 1 到 5 个客户群，且不要重复。" in html
        form = MultiDict([("_csrf", csrf), ("chat_id", chat), ("chat_id", other),
                          ("campaign", "柜台立牌"), ("store", "")])
        status, _, resp = await console.post("/console/acme/group-codes", form)
        assert status == 303, resp.headers
        assert "done=created" in resp.headers["Location"]
        (code,) = (await _codes(stack))["codes"]
        assert [g["chat_id"] for g in code["groups"]] == [chat, other]
        await stack.sandbox.join_group_by_way("acme", code["config_id"], [first])
        await stack.runtime.drain()
        status, page, _ = await console.get(resp.headers["Location"])
        row = re.search(rf'data-group-code="{code["id"]}".*?</tr>', page, re.S)
        assert row and 'data-col="joined">1<' in row.group(0) and "王芳" in row.group(0)
        assert "柜台立牌" in row.group(0) and code["qr_code"] in row.group(0)
        assert "已生成群活码。" in page
        status, page, _ = await console.get("/console/acme/group-codes?from=2020-01-01"
                                            "&to=2020-01-02&lang=en")
        row = re.search(rf'data-group-code="{code["id"]}".*?</tr>', page, re.S)
        assert row and 'data-col="joined">0<' in row.group(0) and "王芳" not in row.group(0)
        # the console of beta lists nothing of acme's
        beta = Console(stack)
        try:
            await beta.login("beta", "beta-admin-token")
            status, page, _ = await beta.get("/console/beta/group-codes")
            assert status == 200 and f'data-group-code="{code["id"]}"' not in page
            status, page, _ = await beta.post(
                f"/console/beta/group-codes/{code['id']}/delete", {"_csrf": csrf_in(page)})
            assert status == 404
        finally:
            await beta.close()
        status, _, resp = await console.post(f"/console/acme/group-codes/{code['id']}/delete",
                                             {"_csrf": csrf})
        assert status == 303
        status, page, _ = await console.get(resp.headers["Location"])  # in English now
        assert "Group code deleted." in page
        (code,) = (await _codes(stack))["codes"]
        assert code["deleted_at"] and code["joined"] == 1
    finally:
        await console.close()


def _alert(html: str) -> str:
    found = re.search(r'role="alert"[^>]*>(.*?)</p>', html, re.S)
    assert found, html
    return " ".join(found.group(1).split())


async def test_console_changes_a_codes_groups_keeping_its_qr_code(stack: Stack) -> None:
    chat = await _group(stack, "门店会员群", [])
    other = await _group(stack, "新品体验群", [])
    status, made = await stack.admin("/group-codes", method="POST", json={
        "chat_ids": [chat], "campaign": "柜台立牌", "store": "sh-01"})
    assert status == 201, made
    page_path = f"/console/acme/group-codes/{made['id']}"
    console = Console(stack)
    try:
        await console.login("acme", "acme-admin-token")
        status, page, _ = await console.get("/console/acme/group-codes")
        assert f'href="{page_path}"' in page
        status, page, _ = await console.get(page_path)
        assert status == 200 and 'id="edit-group-code"' in page, page
        assert re.search(rf'value="{chat}" checked', page)
        assert re.search(rf'value="{other}">', page)  # offered, not ticked
        csrf = csrf_in(page)
        edit = MultiDict([("_csrf", csrf), ("chat_id", other), ("campaign", "新品海报"),
                          ("store", ""), ("room_base_name", ""), ("room_base_id", "0")])
        status, _, resp = await console.post(page_path, edit)
        assert status == 303, resp.headers
        assert resp.headers["Location"] == f"{page_path}?done=edited"
        status, page, _ = await console.get(resp.headers["Location"])
        assert "已保存修改。" in page and "新品海报" in page
        facts = re.search(r'id="code-facts".*?</dl>', page, re.S)
        assert facts and "新品体验群" in facts.group(0) and "门店会员群" not in facts.group(0)
        status, now = await stack.admin(f"/group-codes/{made['id']}")
        assert [g["chat_id"] for g in now["groups"]] == [other]
        assert (now["campaign"], now["store"]) == ("新品海报", None)
        assert (now["qr_code"], now["state"]) == (made["qr_code"], made["state"])
        (update,) = [c for c in stack.calls() if c["path"] == WAYS + "update_join_way"]
        assert update["body"]["chat_id_list"] == [other]
        assert update["body"]["config_id"] == made["config_id"]
        # the next scan of the same QR code lands in the new group
        customer = await _customer(stack, "王芳")
        joined = await stack.sandbox.join_group_by_way("acme", made["config_id"], [customer])
        assert joined["chat_id"] == other
        await stack.runtime.drain()
        (listed,) = (await _codes(stack))["codes"]
        assert listed["joined"] == 1 and listed["joins"][0]["chat_id"] == other

        # refusals are worded from the catalog and change nothing
        for form, said in [
                ([("room_base_id", "0")], "请选择 1 到 5 个客户群，且不要重复。"),
                ([("chat_id", "wrNOSUCH")], "客户群 wrNOSUCH 不是本企业未解散的客户群。"),
                ([("chat_id", chat), ("auto_create_room", "1")],
                 "群满后自动新建群时，需要填写 1 到 40 个字符的群名称，起始序号须为非负整数。")]:
            status, html, _ = await console.post(page_path, MultiDict(
                [("_csrf", csrf), ("campaign", "不该保存"), *form]))
            assert (status, _alert(html)) == (400, said), form
        await _refuse_once(stack, "update_join_way")
        status, html, _ = await console.post(f"{page_path}?lang=en", MultiDict(
            [("_csrf", csrf), ("chat_id", chat), ("campaign", "不该保存")]))
        assert (status, _alert(html)) == (
            400, "WeCom refused the request (errcode 40058); nothing was saved.")
        status, kept = await stack.admin(f"/group-codes/{made['id']}")
        assert ([g["chat_id"] for g in kept["groups"]], kept["campaign"]) == (
            [other], "新品海报")
        joined = await stack.sandbox.join_group_by_way(
            "acme", made["config_id"], [await _customer(stack, "李雷")])
        assert joined["chat_id"] == other  # WeCom's way unchanged too
        updates = len([c for c in stack.calls() if c["path"] == WAYS + "update_join_way"])

        # another tenant's session neither sees nor changes it
        beta = Console(stack)
        try:
            await beta.login("beta", "beta-admin-token")
            status, page, _ = await beta.get("/console/beta/group-codes")
            status, html, _ = await beta.get(f"/console/beta/group-codes/{made['id']}")
            assert status == 404 and "新品海报" not in html
            status, _, _ = await beta.post(
                f"/console/beta/group-codes/{made['id']}",
                MultiDict([("_csrf", csrf_in(page)), ("chat_id", chat)]))
            assert status == 404
            status, _, _ = await beta.post(
                page_path, MultiDict([("_csrf", csrf_in(page)), ("chat_id", chat)]))
            assert status == 403
        finally:
            await beta.close()
        status, kept = await stack.admin(f"/group-codes/{made['id']}")
        assert [g["chat_id"] for g in kept["groups"]] == [other]
        assert len([c for c in stack.calls()
                    if c["path"] == WAYS + "update_join_way"]) == updates

        # a deleted code shows no form, and cannot be changed
        status, _, resp = await console.post(f"{page_path}/delete", {"_csrf": csrf})
        assert status == 303
        status, page, _ = await console.get(page_path)
        assert status == 200 and 'id="deleted"' in page
        assert 'id="edit-group-code"' not in page and 'id="delete-group-code"' not in page
        status, html, _ = await console.post(page_path, MultiDict(
            [("_csrf", csrf), ("chat_id", chat)]))
        assert (status, _alert(html)) == (  # in English since ?lang=en
            404, "No such group code (or it was deleted).")
    finally:
        await console.close()
