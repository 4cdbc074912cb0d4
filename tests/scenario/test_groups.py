"""Customer groups (客户群) over HTTP against the sandbox: each change_external_chat callback
(create, joins, leaves, rename, dismiss) is read back with groupchat/get and stored; a read
that WeCom has not caught up with is retried by the inbox; the sync reads every group and
dismisses those WeCom no longer lists; the console and the admin API show groups, members,
joins and leaves (a customer who leaves and comes back counted at each), and the customer page
the customer's groups."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from guidebot.db.models import InboxItem
from tests.support.console import Console, csrf_in, upkeep
from tests.support.groups import leavers_group
from tests.support.stack import Stack


async def _add(stack: Stack, guide: str, name: str) -> str:
    added = await stack.sandbox.simulate_add_contact("acme", userid=guide, name=name)
    await stack.runtime.drain()
    return str(added["external_userid"])


async def _groups(stack: Stack, query: str = "") -> dict[str, Any]:
    status, body = await stack.admin(f"/groups{query}")
    assert status == 200, body
    return body


async def _group(stack: Stack, chat_id: str) -> dict[str, Any]:
    status, body = await stack.admin(f"/groups/{chat_id}")
    assert status == 200, body
    return body


def _members(group: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["member_id"]: m for m in group["members"]}


async def test_group_callbacks_are_read_back_and_joins_and_leaves_kept(stack: Stack) -> None:
    first, second = await _add(stack, "lina", "王芳"), await _add(stack, "lina", "李雷")
    created = await stack.sandbox.create_group("acme", "lina", name="春季新品群",
                                               members=[first])
    assert created["delivery"]["status"] == 200
    chat = str(created["chat_id"])
    await stack.runtime.drain()
    listed = await _groups(stack)
    (group,) = listed["groups"]
    assert (group["chat_id"], group["name"], group["owner"]) == (chat, "春季新品群", "lina")
    assert (group["customers"], group["staff"], group["joined"]) == (1, 1, 1)

    await stack.sandbox.join_group("acme", chat, [second], join_scene=3)
    await stack.runtime.drain()
    await stack.sandbox.quit_group("acme", chat, [first])
    await stack.runtime.drain()
    await stack.sandbox.change_group("acme", chat, name="春季新品 VIP 群")
    await stack.runtime.drain()
    detail = await _group(stack, chat)
    members = _members(detail)
    assert detail["name"] == "春季新品 VIP 群" and detail["customers"] == 1
    assert members[second]["kind"] == "customer" and members[second]["join_scene"] == 3
    assert members[second]["left_at"] is None
    assert members[first]["left_at"] is not None
    assert members["lina"]["kind"] == "member"
    totals = (await _groups(stack))["totals"]
    assert totals == {"groups": 1, "customers": 1, "joined": 2, "left": 1}

    await stack.sandbox.dismiss_group("acme", chat)
    await stack.runtime.drain()
    assert (await _groups(stack))["groups"] == []
    (gone,) = (await _groups(stack, "?dismissed=true"))["groups"]
    assert gone["dismissed_at"] and gone["customers"] == 0
    assert all(m["left_at"] for m in (await _group(stack, chat))["members"])
    async with stack.runtime.services.db.read() as s:
        items = list((await s.execute(select(InboxItem))).scalars())
    handled = [i.outcome for i in items if i.outcome != "on_contact_added"]
    assert handled == ["on_group_changed"] * 5, [(i.outcome, i.last_error) for i in items]
    status, _ = await stack.admin("/groups/wrNOSUCHCHAT")
    assert status == 404
    status, _ = await stack.admin(f"/groups/{chat}", tenant="beta", token="beta-admin-token")
    assert status == 404  # another tenant's group does not exist for beta


async def test_a_read_wecom_has_not_caught_up_with_is_retried_and_the_sync_repairs_it(
        stack: Stack) -> None:
    customer = await _add(stack, "lina", "王芳")
    created = await stack.sandbox.create_group("acme", "lina", name="老客群", members=[])
    chat = str(created["chat_id"])
    await stack.runtime.drain()
    # WeCom calls back a join before groupchat/get shows it
    answer = await stack.sandbox.simulate_event("acme", {
        "Event": "change_external_chat", "ChangeType": "update", "ChatId": chat,
        "UpdateDetail": "add_member", "JoinScene": 0, "MemChangeCnt": 1,
        "MemChangeList": {"Item": [customer]}})
    assert answer["delivery"]["status"] == 200
    await stack.runtime.drain()
    async with stack.runtime.services.db.read() as s:
        item = (await s.execute(select(InboxItem).order_by(
            InboxItem.id.desc()).limit(1))).scalar_one()  # type: ignore[attr-defined]
    assert item.outcome == "failed" and item.attempts == 3, item
    assert "behind the callback" in item.last_error
    assert customer not in _members(await _group(stack, chat))

    await stack.sandbox.join_group("acme", chat, [customer], deliver=False)
    second = await stack.sandbox.create_group("acme", "lina", name="新群", members=[customer],
                                              deliver=False)
    status, synced = await stack.admin("/groups/sync", method="POST")
    assert status == 200 and synced == {"groups": 2, "dismissed": 0}, synced
    assert customer in _members(await _group(stack, chat))
    assert (await _group(stack, str(second["chat_id"])))["customers"] == 1
    await stack.sandbox.dismiss_group("acme", chat, deliver=False)
    status, synced = await stack.admin("/groups/sync", method="POST")
    assert synced == {"groups": 1, "dismissed": 1}
    assert [g["chat_id"] for g in (await _groups(stack))["groups"]] == [second["chat_id"]]
    third = await stack.sandbox.create_group("acme", "lina", name="第三个群", members=[],
                                             deliver=False)
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/faults", json={
            "tenant": "acme", "path": "externalcontact/groupchat/get", "errcode": 40050,
            "times": 1}) as resp:
        assert resp.status == 200
    status, synced = await stack.admin("/groups/sync", method="POST")  # one read refused:
    assert status == 200 and synced["groups"] == 2, synced  # the others still stored
    status, synced = await stack.admin("/groups/sync", method="POST")
    names = sorted(g["name"] for g in (await _groups(stack))["groups"])
    assert names == ["新群", "第三个群"] and third["chat_id"]


async def test_console_shows_groups_their_members_and_a_customers_groups(
        stack: Stack) -> None:
    first = await _add(stack, "lina", "王芳")
    created = await stack.sandbox.create_group("acme", "lina", name="会员群", members=[first])
    chat = str(created["chat_id"])
    await stack.runtime.drain()
    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        status, html, _ = await console.get("/console/acme/groups")
        assert status == 200 and f'data-chat="{chat}"' in html and "会员群" in html
        assert re.search(r'data-figure="groups">1<', html)
        assert re.search(r'data-figure="group_joined">1<', html)
        await upkeep(stack)  # the data centre's group figures come from the statistics
        status, overview, _ = await console.get("/console/acme/")
        assert re.search(r'data-figure="groups">1<', overview)
        assert re.search(r'data-figure="group_members">1<', overview)
        assert re.search(r'data-figure="group_joins">1<', overview)
        status, api = await stack.admin("/metrics/overview")
        assert api["groups"] == {"groups": 1, "customers": 1, "joined": 1, "left": 0}
        assert (api["totals"]["group_members"], api["totals"]["group_joins"]) == (1, 1)
        status, board, _ = await console.get("/console/acme/guides")
        lina = re.search(r'data-guide="lina">.*?</tr>', board, re.S)
        assert lina and 'data-col="groups">1<' in lina.group(0)
        assert 'data-col="group_members">1<' in lina.group(0)
        status, page, _ = await console.get(f"/console/acme/groups/{chat}")
        assert status == 200 and f'data-member="{first}"' in page and "王芳" in page
        status, page, _ = await console.get(f"/console/acme/customers/{first}")
        assert "所在客户群" in page and f'data-chat="{chat}"' in page
        status, _, resp = await console.post("/console/acme/groups/sync",
                                             {"_csrf": csrf_in(html)})
        assert status == 303 and resp.headers["Location"].endswith("?synced=1")
        status, page, _ = await console.get("/console/acme/groups?synced=1&lang=en")
        assert "Groups were synced from WeCom." in page
        status, _, _ = await console.get("/console/acme/groups/wrNOSUCH")
        assert status == 404
        await _add(stack, "mia", "韩梅")  # another active guide
        status, page, _ = await console.get(f"/console/acme/groups/{chat}")
        status, _, resp = await console.post(f"/console/acme/groups/{chat}/owner",
                                             {"_csrf": csrf_in(page), "new_owner": "mia"})
        assert status == 303 and resp.headers["Location"].endswith("?handed=1")
        await stack.runtime.drain()  # the change_owner callback
        assert (await _group(stack, chat))["owner"] == "mia"
        assert stack.calls("externalcontact/groupchat/onjob_transfer")
        status, page, _ = await console.post(f"/console/acme/groups/{chat}/owner",
                                             {"_csrf": csrf_in(page), "new_owner": "mia"})
        assert status == 409  # 群主没变: refused, nothing changed (lang=en)
        assert "WeCom did not change the owner (errcode 90504); nothing changed." in page
    finally:
        await console.close()


async def test_an_update_read_after_the_group_is_gone_records_it_dismissed(
        stack: Stack) -> None:
    created = await stack.sandbox.create_group("acme", "lina", name="临时群", members=[])
    chat = str(created["chat_id"])
    await stack.runtime.drain()
    await stack.sandbox.dismiss_group("acme", chat, deliver=False)
    answer = await stack.sandbox.simulate_event("acme", {
        "Event": "change_external_chat", "ChangeType": "update", "ChatId": chat,
        "UpdateDetail": "change_name"})
    assert answer["delivery"]["status"] == 200
    await stack.runtime.drain()
    assert (await _groups(stack))["groups"] == []
    assert (await _group(stack, chat))["dismissed_at"]


async def test_a_leavers_groups_go_to_a_new_owner(stack: Stack) -> None:
    _, chat = await leavers_group(stack)
    for body, said in (({"chat_ids": [chat], "new_owner": "ahui", "kind": "resigned"},
                        "not an active guide"),
                       ({"chat_ids": ["wrNOSUCHGROUP"], "new_owner": "qing",
                         "kind": "resigned"}, "unknown or dismissed")):
        status, answer = await stack.admin("/groups/transfer", method="POST", json=body)
        assert status == 400 and said in answer["error"], answer
    assert stack.calls("externalcontact/groupchat/transfer") == []

    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        status, html, _ = await console.get("/console/acme/transfers")
        row = re.search(r'data-owner="ahui">.*?</tr>', html, re.S)
        assert row and "陈阿辉" in row.group(0), html
        status, _, resp = await console.post("/console/acme/transfers/groups", {
            "_csrf": csrf_in(html), "handover": "ahui", "new_owner": "qing"})
        assert status == 303 and resp.headers["Location"].endswith("?groups=1&failed=0")
        status, html, _ = await console.get(resp.headers["Location"])
        assert "已提交 1 个群的继承" in html and 'data-owner="ahui"' not in html
    finally:
        await console.close()
    (call,) = stack.calls("externalcontact/groupchat/transfer")
    assert call["body"] == {"chat_id_list": [chat], "new_owner": "qing"}
    assert (await _group(stack, chat))["status"] == 2  # 离职继承中
    await stack.sandbox.advance(86_400 + 60)
    await stack.runtime.drain()
    detail = await _group(stack, chat)
    assert detail["owner"] == "qing", detail
    status, again = await stack.admin("/groups/transfer", method="POST", json={
        "chat_ids": [chat], "new_owner": "qing", "kind": "on_job"})
    assert status == 200 and again["transferred"] == [], again
    assert [f["chat_id"] for f in again["failed"]] == [chat]
    assert again["failed"][0]["errcode"] == 90504  # 群主没变


async def test_a_sync_reads_many_groups_and_leaves_a_refused_read_to_the_next(
        stack: Stack) -> None:
    for i in range(260):  # more than one chunk of reads; guidebot hears of none of them
        await stack.sandbox.create_group("acme", "lina", name=f"群{i:03d}", members=[],
                                         deliver=False)
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/faults", json={
            "tenant": "acme", "path": "externalcontact/groupchat/get", "errcode": 60011,
            "times": 1}) as answer:
        assert answer.status == 200
    status, synced = await stack.admin("/groups/sync", method="POST")
    assert status == 200 and synced == {"groups": 260, "dismissed": 0}, synced
    assert len((await _groups(stack))["groups"]) == 259  # the refused read: next sync
    status, synced = await stack.admin("/groups/sync", method="POST")
    assert status == 200 and len((await _groups(stack))["groups"]) == 260
    reads = stack.calls("externalcontact/groupchat/get")
    assert len(reads) >= 520


async def test_a_customer_who_leaves_and_comes_back_is_counted_in_each_range(
        stack: Stack) -> None:
    """group_members keeps a member's last join and leave only; the ranges count every join
    and leave (group_customer_changes). Each change comes two days after the last (the
    sandbox's clock), so each falls on a day of its own whatever the time of day."""
    customer = await _add(stack, "lina", "王芳")
    created = await stack.sandbox.create_group("acme", "lina", name="回头客群", members=[])
    chat = str(created["chat_id"])
    await stack.runtime.drain()
    zone = stack.runtime.services.settings.tenant("acme").tz
    days: list[date] = []
    for change in ("join", "quit", "join", "quit"):
        stack.sandbox.advance_clock(2 * 86_400)
        if change == "join":
            await stack.sandbox.join_group("acme", chat, [customer])
        else:
            await stack.sandbox.quit_group("acme", chat, [customer])
        await stack.runtime.drain()
        member = _members(await _group(stack, chat))[customer]
        at = member["joined_at"] if change == "join" else member["left_at"]
        days.append(datetime.fromisoformat(at).astimezone(zone).date())
    assert days == sorted(set(days)), days  # four days, in order
    joined_1, left_1, joined_2, left_2 = days
    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        for first, last, joins, leaves in ((joined_1, joined_1, 1, 0), (left_1, left_1, 0, 1),
                                           (joined_2, joined_2, 1, 0), (left_2, left_2, 0, 1),
                                           (joined_1, left_1, 1, 1), (left_1, joined_2, 1, 1),
                                           (joined_1, joined_2, 2, 1), (joined_1, left_2, 2, 2),
                                           (left_2 + timedelta(days=1),
                                            left_2 + timedelta(days=1), 0, 0)):
            span = f"?from={first.isoformat()}&to={last.isoformat()}"
            listed = await _groups(stack, span)
            assert listed["totals"] == {"groups": 1, "customers": 0, "joined": joins,
                                        "left": leaves}, (span, listed["totals"])
            (group,) = listed["groups"]
            assert (group["joined"], group["left"]) == (joins, leaves), span
            status, overview = await stack.admin(f"/metrics/overview{span}")
            assert status == 200 and overview["groups"] == listed["totals"], span
            status, html, _ = await console.get(f"/console/acme/groups{span}")
            assert status == 200
            assert re.search(rf'data-figure="group_joined">{joins}<', html), span
            assert re.search(rf'data-figure="group_left">{leaves}<', html), span
            row = re.search(rf'data-chat="{chat}">.*?</tr>', html, re.S)
            assert row and f'data-col="joined">{joins}<' in row.group(0), span
            assert f'data-col="left">{leaves}<' in row.group(0), span
    finally:
        await console.close()
