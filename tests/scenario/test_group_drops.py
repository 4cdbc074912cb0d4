"""群发 to customer groups over HTTP against the sandbox: a group_task drop makes one
add_msg_template (chat_type "group") per group owner with the owner's groups in its audience,
tells the owner by app message with a page naming the groups, counts the groups the owner's
confirmation reached, and after a crash mid-call adopts the message WeCom already holds."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import update

from guidebot.db.models import Guide, OutboxItem
from tests.support.console import Console
from tests.support.stack import Stack, known, stack_with

DATA = Path(__file__).resolve().parents[1] / "data" / "sop"
DROP_AT = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)  # group_drop: 10:00 in Shanghai
TEXT = "会员日"  # drop_group_weekend_event's text


@pytest.fixture
async def group_stack(aiohttp_server: Any, tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    stack = await stack_with(aiohttp_server, tmp_path, db_url,
                             {"drops/group_drop.toml": DATA / "group_drop.toml"})
    yield stack
    await stack.http.close()


async def _group(stack: Stack, owner: str, name: str) -> str:
    created = await stack.sandbox.create_group("acme", owner, name=name, members=[])
    await stack.runtime.drain()
    return str(created["chat_id"])


async def _fire(stack: Stack) -> None:
    sop = stack.runtime.services.sop
    sop.clock = lambda: DROP_AT + timedelta(minutes=5)
    await sop.singletons("acme")
    await sop.tick("acme")


async def _tasks(stack: Stack, kind: str = "group_task") -> list[dict[str, Any]]:
    status, body = await stack.admin("/tasks")
    assert status == 200, body
    return [t for t in body["tasks"] if t["kind"] == kind]


async def test_a_group_drop_sends_each_owner_their_groups_and_counts_confirmations(
        group_stack: Stack) -> None:
    stack = group_stack
    await known(stack, guides=("lina", "zhou", "mei"))
    vip = await _group(stack, "lina", "静安会员福利群")
    vip2 = await _group(stack, "lina", "会员二群")
    await _group(stack, "lina", "同事群")  # the name does not match
    zhou = await _group(stack, "zhou", "徐汇会员群")
    await _group(stack, "mei", "会员群")  # mei is not in the audience
    gone = await _group(stack, "lina", "会员老群")
    await stack.sandbox.dismiss_group("acme", gone)
    await stack.runtime.drain()

    await _fire(stack)
    sends = stack.calls("externalcontact/add_msg_template")
    assert sorted((c["body"]["sender"], tuple(c["body"]["chat_id_list"])) for c in sends) == [
        ("lina", tuple(sorted((vip, vip2)))), ("zhou", (zhou,))]
    assert {c["body"]["chat_type"] for c in sends} == {"group"}
    assert all(TEXT in c["body"]["text"]["content"] for c in sends)
    assert all("external_userid" not in c["body"] for c in sends)
    tasks = {t["guide"]: t for t in await _tasks(stack)}
    assert {g: (t["recipients"], t["status"]) for g, t in tasks.items()} == {
        "lina": (2, "sent"), "zhou": (1, "sent")}
    assert all("groups" not in t["detail"] for t in tasks.values())

    await stack.runtime.services.sop.tick("acme")  # the owners' notices go out
    cards = [c["body"] for c in stack.calls("message/send")
             if c["body"].get("msgtype") == "textcard"]
    lina = next(c for c in cards if c["touser"] == "lina")
    assert "2 个客户群" in lina["textcard"]["description"]
    link = urlsplit(lina["textcard"]["url"])
    async with stack.http.get(f"{stack.bot_url}{link.path}?{link.query}") as resp:
        assert resp.status == 200
        page = await resp.text()
    assert "静安会员福利群" in page and "会员二群" in page and "同事群" not in page
    assert "发给 2 个客户群" in page and TEXT in page

    stack.sandbox.confirm_groupmsg("acme", tasks["lina"]["msgid"], "lina")
    sop = stack.runtime.services.sop
    sop.clock = lambda: DROP_AT + timedelta(hours=1)
    assert await sop.track("acme") >= 1
    confirmed = {t["guide"]: (t["status"], t["confirmed"]) for t in await _tasks(stack)}
    assert confirmed["lina"] == ("confirmed", 2)
    assert confirmed["zhou"][0] == "sent"  # zhou has not confirmed: reminded instead
    reminded = [c["body"]["msgid"] for c in stack.calls(
        "externalcontact/remind_groupmsg_send")]
    assert reminded == [tasks["zhou"]["msgid"]]
    async with stack.http.get(f"{stack.bot_url}{link.path}?{link.query}") as resp:
        assert "已有 2 个客户群收到" in await resp.text()

    await _fire(stack)  # the one-off drop fired once
    assert len(stack.calls("externalcontact/add_msg_template")) == 2

    console = Console(stack)  # each group's page lists the 群发 made for it
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        for chat, task in ((vip, tasks["lina"]), (vip2, tasks["lina"]), (zhou, tasks["zhou"])):
            _, html = (await console.get(f"/console/acme/groups/{chat}"))[:2]
            assert re.findall(r'<tr data-task="(\d+)">', html) == [str(task["id"])], chat
        _, html = (await console.get(f"/console/acme/groups/{gone}"))[:2]
        assert "还没有发给这个群的群发" in html
    finally:
        await console.close()


async def test_groups_whose_owner_left_or_outside_the_stores_are_left_out(
        group_stack: Stack) -> None:
    stack = group_stack
    await known(stack, guides=("lina", "zhou"))
    mine = await _group(stack, "lina", "会员群")
    await _group(stack, "zhou", "会员群")
    async with stack.runtime.services.db.write() as s:
        await s.execute(update(Guide).where(Guide.userid == "zhou").values(active=False))
    await _fire(stack)
    [send] = stack.calls("externalcontact/add_msg_template")
    assert (send["body"]["sender"], send["body"]["chat_id_list"]) == ("lina", [mine])


async def test_killed_after_the_wecom_call_the_group_message_is_adopted_not_resent(
        group_stack: Stack) -> None:
    stack = group_stack
    await known(stack, guides=("lina",))
    chat = await _group(stack, "lina", "会员群")
    executors = stack.runtime.services.sop._executors
    real = executors._sent

    class Died(Exception):
        pass

    def die(*args: Any, **kwargs: Any) -> None:
        raise Died  # WeCom created the message; the process dies before recording it

    executors._sent = die  # type: ignore[method-assign]
    with pytest.raises(Died):
        await _fire(stack)
    executors._sent = real  # type: ignore[method-assign]
    assert len(stack.calls("externalcontact/add_msg_template")) == 1
    services = stack.runtime.services
    async with services.db.write() as s:  # later, the outbox row is stale
        await s.execute(update(OutboxItem).values(
            updated_at=DROP_AT - timedelta(hours=1)))
    assert await services.outbox.retry_due(services.calls) >= 1
    assert len(stack.calls("externalcontact/add_msg_template")) == 1
    [lookup] = stack.calls("externalcontact/get_groupmsg_list_v2")
    assert lookup["body"]["chat_type"] == "group"
    [task] = await _tasks(stack)
    assert task["status"] == "sent" and task["msgid"] and task["recipients"] == 1
    assert stack.calls("externalcontact/add_msg_template")[0]["body"]["chat_id_list"] == [chat]
