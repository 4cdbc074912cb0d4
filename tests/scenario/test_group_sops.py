"""Group SOPs (群SOP) over HTTP against the sandbox: a customer group created with a name the
shipped 新群培育 admits enrolls once (its owner its guide); its steps are 群发 to that group
by the owner (add_msg_template, chat_type group), confirmed and counted; dismissing the group
ends it; customers cannot be enrolled in it by hand."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from guidebot.db.repo import sop_plan
from tests.support.console import Console, csrf_in
from tests.support.stack import Stack, known

SHANGHAI = ZoneInfo("Asia/Shanghai")  # the test tenant's time zone


async def _enrollments(stack: Stack, chat_id: str) -> list[tuple[str, str, str]]:
    async with stack.runtime.services.db.read() as s:
        rows = await sop_plan.customer_enrollments(
            s, tenant="acme", external_userid=chat_id,
            statuses=("active", "completed", "exited"))
    return [(r.sop_id, r.guide, r.status) for r in rows]


async def _group(stack: Stack, owner: str, name: str) -> tuple[str, datetime]:
    """The group's chat id, and noon (Shanghai) the day after it was created: a time every
    test run reaches outside quiet hours, whatever the time of day it runs at."""
    created = await stack.sandbox.create_group("acme", owner, name=name, members=[])
    await stack.runtime.drain()
    local = datetime.fromtimestamp(stack.sandbox.now(), SHANGHAI)
    noon = local.replace(hour=12, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return str(created["chat_id"]), noon


async def test_a_new_group_is_nurtured_by_its_owner_until_dismissed(stack: Stack) -> None:
    await known(stack, guides=("lina",))
    chat, noon = await _group(stack, "lina", "静安会员群")
    other, _ = await _group(stack, "lina", "同事群")  # the name does not match
    assert await _enrollments(stack, chat) == [("group_nurture", "lina", "active")]
    assert await _enrollments(stack, other) == []
    await stack.sandbox.change_group("acme", chat, name="静安会员群（新）")
    await stack.runtime.drain()  # an update is not a creation: still one enrollment
    assert len(await _enrollments(stack, chat)) == 1
    async with stack.runtime.services.db.read() as s:
        customers = await sop_plan.customer_enrollments(s, tenant="acme", external_userid=chat)
    assert customers  # enrolled under the chat id; no customer row is made for it

    sop = stack.runtime.services.sop
    sop.clock = lambda: noon  # step 1 (10 minutes after) due, step 2 (day 3 19:30) not yet
    await sop.tick("acme")
    await sop.tick("acme")
    [send] = stack.calls("externalcontact/add_msg_template")
    assert send["body"]["chat_type"] == "group" and send["body"]["sender"] == "lina"
    assert send["body"]["chat_id_list"] == [chat]
    assert "欢迎大家加入本群" in send["body"]["text"]["content"]
    _, body = await stack.admin("/tasks")
    [task] = [t for t in body["tasks"] if t["kind"] == "group_task"]
    assert (task["source"], task["step"], task["recipients"]) == ("sop:group_nurture", 0, 1)
    notices = [c["body"]["textcard"]["description"] for c in stack.calls("message/send")
               if c["body"].get("msgtype") == "textcard"]
    assert any("1 个客户群" in n for n in notices), notices

    stack.sandbox.confirm_groupmsg("acme", task["msgid"], "lina")
    sop.clock = lambda: noon + timedelta(hours=2)
    assert await sop.track("acme") >= 1
    _, body = await stack.admin("/tasks?status=confirmed")
    assert [(t["id"], t["confirmed"]) for t in body["tasks"]] == [(task["id"], 1)]
    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        status, html, _ = await console.get("/console/acme/sops/group_nurture")
        assert status == 200 and 'id="group-sop"' in html and "enroll-submit" not in html
        row = re.search(r'data-step="0".*?</tr>', html, re.S)
        assert row and 'data-figure="confirmed">1<' in row.group(0), html
        status, html, _ = await console.get(f"/console/acme/groups/{chat}")
        sent = re.search(rf'<tr data-task="{task["id"]}">.*?</tr>', html, re.S)
        assert status == 200 and sent, html  # the group's 群发记录
        assert "新群培育" in sent.group(0) and "第 1 步" in sent.group(0)
        assert "导购已确认" in sent.group(0)
        status, html, _ = await console.get(f"/console/acme/groups/{other}")
        assert status == 200 and "还没有发给这个群的群发" in html
    finally:
        await console.close()

    await stack.sandbox.dismiss_group("acme", chat)
    await stack.runtime.drain()
    assert await _enrollments(stack, chat) == [("group_nurture", "lina", "exited")]
    sop.clock = lambda: noon + timedelta(days=4)  # step 2 would be due
    await sop.tick("acme")
    await sop.tick("acme")
    assert len(stack.calls("externalcontact/add_msg_template")) == 1

    await known(stack, customers=("wmCUSTOMER1",))
    status, refused = await stack.admin("/sops/group_nurture/enroll", method="POST",
                                        json={"external_userid": "wmCUSTOMER1",
                                              "guide": "lina"})
    assert status == 400 and "is for customer groups" in refused["reason"], refused
    status, body = await stack.admin("/sops/group_nurture/enroll", method="POST",
                                     json={"audience": {"guides": ["lina"]}})
    assert status == 200 and body["enrolled"] == 0, body  # its one group is dismissed


async def test_existing_groups_enroll_as_an_audience(stack: Stack) -> None:
    await known(stack, guides=("lina", "wang"))
    chats = {}
    for owner, name in (("lina", "会员一群"), ("lina", "同事群"), ("wang", "福利群")):
        created = await stack.sandbox.create_group("acme", owner, name=name, members=[],
                                                   deliver=False)  # before guidebot ran
        chats[name] = str(created["chat_id"])
    status, synced = await stack.admin("/groups/sync", method="POST")
    assert status == 200 and synced["groups"] == 3
    for chat in chats.values():  # a sync enrolls none
        assert await _enrollments(stack, chat) == []

    status, refused = await stack.admin("/sops/group_nurture/enroll", method="POST",
                                        json={"audience": {"tags_any": ["VIP"]}})
    assert status == 400 and "tags do not apply" in refused["reason"], refused
    status, body = await stack.admin("/sops/group_nurture/enroll", method="POST",
                                     json={"audience": {"guides": ["wang"]}})
    assert status == 200 and body["enrolled"] == 1, body
    assert await _enrollments(stack, chats["福利群"]) == [("group_nurture", "wang", "active")]
    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        status, html, _ = await console.get("/console/acme/sops/group_nurture")
        assert status == 200 and "加入现有客户群" in html
        status, _, resp = await console.post("/console/acme/sops/group_nurture/enroll", {
            "_csrf": csrf_in(html), "groups": "1", "guides": ""})
        assert status == 303 and "enrolled=1" in resp.headers["Location"], resp.headers
    finally:
        await console.close()
    assert await _enrollments(stack, chats["会员一群"]) == [("group_nurture", "lina", "active")]
    assert await _enrollments(stack, chats["同事群"]) == []  # the trigger's names
