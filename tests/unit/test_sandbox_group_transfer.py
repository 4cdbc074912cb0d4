"""客户群继承 in the sandbox over HTTP: groupchat/onjob_transfer changing a group's owner at
once, groupchat/transfer's 离职继承 waiting 24 hours on the sandbox clock, their per-chat
errcodes and their whole-request errors."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from guidebot import events as ev
from guidebot.wecom.parse import parse_event
from tests.unit.test_sandbox import control, sandbox_of, sandbox_with_directory, start_receiver
from tests.unit.test_sandbox_groups import HEADER, group_chat, listed, refused
from tests.unit.test_sandbox_transfer import advance, api

DAY = 86400
ONJOB = "externalcontact/groupchat/onjob_transfer"
RESIGNED = "externalcontact/groupchat/transfer"
MEMBERS = [{"userid": "ahui", "name": "阿辉", "department": [1]},
           {"userid": "xiaomei", "name": "小美", "department": [1]},
           {"userid": "ading", "name": "阿丁", "department": [1]},
           {"userid": "leaver", "name": "离职", "department": [1]},
           {"userid": "away", "name": "停用", "department": [1], "status": 2}]
DIRECTORY = {"departments": [{"id": 1, "name": "acme", "parentid": 0}], "members": MEMBERS}


@pytest.fixture
async def sandbox(aiohttp_client: Any, tmp_path: Path) -> TestClient:
    return await sandbox_with_directory(aiohttp_client, tmp_path, DIRECTORY)


async def create(client: TestClient, owner: str, *members: str) -> str:
    created = await sandbox_of(client).create_group("acme", owner, members=list(members),
                                                    deliver=False)
    return str(created["chat_id"])


async def resign(client: TestClient, userid: str) -> None:
    [member] = [m for m in MEMBERS if m["userid"] == userid]
    status, answer = await control(client, "acme/directory", {
        "members": [{**member, "status": 5}], "deliver": False})
    assert status == 200, answer


async def transfer(client: TestClient, new_owner: Any, *chats: str,
                   path: str = ONJOB) -> dict[str, Any]:
    return await api(client, path, {"chat_id_list": list(chats), "new_owner": new_owner})


async def failures(client: TestClient, new_owner: str, *chats: str,
                   path: str = ONJOB) -> dict[str, int]:
    """The per-chat errcodes of a call that succeeded as a whole."""
    answer = await transfer(client, new_owner, *chats, path=path)
    assert (answer["errcode"], answer["errmsg"]) == (0, "ok"), answer
    assert all(f["errmsg"] for f in answer["failed_chat_list"])
    return {f["chat_id"]: f["errcode"] for f in answer["failed_chat_list"]}


async def statuses(client: TestClient) -> dict[str, int]:
    answer = await listed(client)
    assert answer["errcode"] == 0, answer
    return {g["chat_id"]: g["status"] for g in answer["group_chat_list"]}


async def test_an_on_job_transfer_changes_the_owner_at_once_and_calls_back(
        aiohttp_server: Any, sandbox: TestClient) -> None:
    chat_id = await create(sandbox, "ahui", "wmA")
    owned = await create(sandbox, "xiaomei")
    gone = await create(sandbox, "ahui")
    await sandbox_of(sandbox).dismiss_group("acme", gone, deliver=False)
    before = await group_chat(sandbox, chat_id)
    receiver = await start_receiver(aiohttp_server, sandbox)
    answer = await transfer(sandbox, "xiaomei", chat_id, owned, "wrUnknown", gone)
    assert answer == {"errcode": 0, "errmsg": "ok", "failed_chat_list": [
        {"chat_id": owned, "errcode": 90504, "errmsg": "new_owner is already the group owner"},
        {"chat_id": "wrUnknown", "errcode": 90501, "errmsg": "not a customer group"},
        {"chat_id": gone, "errcode": 90501, "errmsg": "not a customer group"}]}
    [event] = receiver.events  # change_owner alone: the new owner's join is not called back
    assert event["order"] == [*HEADER, "ChatId", "ChangeType", "UpdateDetail"]
    assert (event["Event"], event["ChatId"], event["ChangeType"], event["UpdateDetail"]) == (
        "change_external_chat", chat_id, "update", "change_owner")
    parsed = parse_event("acme", receiver.plaintexts[0])
    assert isinstance(parsed, ev.GroupChatChanged)
    assert (parsed.chat_id, parsed.update_detail) == (chat_id, "change_owner")
    got = await group_chat(sandbox, chat_id)
    assert got["owner"] == "xiaomei" and got["member_version"] != before["member_version"]
    joined = got["member_list"][-1]
    assert (joined["userid"], joined["type"], joined["join_scene"], "invitor" in joined) == (
        "xiaomei", 1, 1, False)
    assert [m["userid"] for m in got["member_list"]] == ["ahui", "wmA", "xiaomei"]
    assert (await statuses(sandbox))[chat_id] == 0
    # back to ahui, who is still in the group: no join, the same members
    assert await failures(sandbox, "ahui", chat_id) == {}
    again = await group_chat(sandbox, chat_id)
    assert (again["owner"], again["member_version"]) == ("ahui", got["member_version"])
    assert [e["UpdateDetail"] for e in receiver.events] == ["change_owner"] * 2


async def test_an_on_job_transfer_of_a_resigned_owners_group_answers_90502(
        aiohttp_server: Any, sandbox: TestClient) -> None:
    chat_id = await create(sandbox, "leaver", "xiaomei")
    await resign(sandbox, "leaver")
    receiver = await start_receiver(aiohttp_server, sandbox)
    assert await statuses(sandbox) == {chat_id: 1}
    assert await failures(sandbox, "xiaomei", chat_id) == {chat_id: 90502}
    assert (await group_chat(sandbox, chat_id))["owner"] == "leaver"
    assert receiver.events == []


async def test_a_resigned_owners_group_is_inherited_after_24_hours(
        aiohttp_server: Any, sandbox: TestClient) -> None:
    chat_id = await create(sandbox, "leaver", "wmA")
    active = await create(sandbox, "ahui")
    await resign(sandbox, "leaver")
    receiver = await start_receiver(aiohttp_server, sandbox)
    started = int(sandbox_of(sandbox).now())
    assert await failures(sandbox, "xiaomei", chat_id, active, path=RESIGNED) == {
        active: 90500}
    assert await statuses(sandbox) == {chat_id: 2, active: 0}
    assert [g["chat_id"] for g in (await listed(sandbox, status_filter=2))["group_chat_list"]
            ] == [chat_id]
    assert (await group_chat(sandbox, chat_id))["owner"] == "leaver"
    assert await failures(sandbox, "ading", chat_id, path=RESIGNED) == {chat_id: 90507}
    assert await failures(sandbox, "ading", chat_id) == {chat_id: 90502}
    _, state = await control(sandbox, "acme/state", method="GET")
    [waiting] = [g for g in state["groups"] if g["chat_id"] == chat_id]
    assert (waiting["inheritance"], waiting["heir"]) == (2, "xiaomei")
    due = waiting["inherit_due"]
    assert started + DAY <= due <= started + DAY + 1
    assert await advance(sandbox, DAY - 5) == [] and receiver.events == []
    assert (await statuses(sandbox))[chat_id] == 2

    deliveries = await advance(sandbox, 5)
    assert [d["status"] for d in deliveries] == [200]
    [event] = receiver.events
    assert (event["ChatId"], event["ChangeType"], event["UpdateDetail"], event["CreateTime"]) \
        == (chat_id, "update", "change_owner", str(due))
    got = await group_chat(sandbox, chat_id)
    assert got["owner"] == "xiaomei"
    assert [m["userid"] for m in got["member_list"]] == ["leaver", "wmA", "xiaomei"]
    assert await statuses(sandbox) == {chat_id: 3, active: 0}
    assert await failures(sandbox, "ading", chat_id, path=RESIGNED) == {chat_id: 90508}
    assert await advance(sandbox, DAY) == []  # settled once
    _, state = await control(sandbox, "acme/state", method="GET")
    [done] = [g for g in state["groups"] if g["chat_id"] == chat_id]
    assert (done["owner"], done["inheritance"], done["heir"]) == ("xiaomei", 3, "xiaomei")
    # an on-job transfer away from the heir ends status 3
    assert await failures(sandbox, "ahui", chat_id) == {}
    assert (await statuses(sandbox))[chat_id] == 0


async def test_a_due_inheritance_settles_before_a_groupchat_call_is_answered(
        aiohttp_server: Any, sandbox: TestClient) -> None:
    chat_id = await create(sandbox, "leaver", "ading")
    dropped = await create(sandbox, "leaver")
    await resign(sandbox, "leaver")
    assert await failures(sandbox, "xiaomei", chat_id, dropped, path=RESIGNED) == {}
    # no one else takes the group over in the client meanwhile (the sandbox's rule)
    assert await refused(sandbox, "change", {"chat_id": chat_id, "owner": "ading"}) == 400
    await sandbox_of(sandbox).dismiss_group("acme", dropped, deliver=False)
    receiver = await start_receiver(aiohttp_server, sandbox)
    sandbox_of(sandbox).advance_clock(DAY)  # the clock alone settles nothing
    assert receiver.events == []
    assert (await group_chat(sandbox, chat_id))["owner"] == "xiaomei"
    # the dismissed group is not taken over and calls nothing back
    assert [(e["ChatId"], e["UpdateDetail"]) for e in receiver.events] == [
        (chat_id, "change_owner")]


async def test_whole_request_errors(aiohttp_server: Any, sandbox: TestClient) -> None:
    chat_id = await create(sandbox, "ahui")
    await resign(sandbox, "leaver")
    receiver = await start_receiver(aiohttp_server, sandbox)
    many = [f"wr{i}" for i in range(101)]
    for path in (ONJOB, RESIGNED):
        assert (await transfer(sandbox, "xiaomei", *many, path=path))["errcode"] == 40058
        assert (await transfer(sandbox, "xiaomei", path=path))["errcode"] == 40058
        assert (await transfer(sandbox, None, chat_id, path=path))["errcode"] == 40058
        assert (await transfer(sandbox, "bad id!", chat_id, path=path))["errcode"] == 40003
        for new_owner in ("leaver", "away"):  # resigned; disabled (status 2)
            answer = await transfer(sandbox, new_owner, chat_id, path=path)
            assert answer["errcode"] == 40098 and "hint" in answer["errmsg"], answer
        body = {"chat_id_list": chat_id, "new_owner": "xiaomei"}
        assert (await api(sandbox, path, body))["errcode"] == 40058
    assert await failures(sandbox, "xiaomei", *many[:100]) == dict.fromkeys(many[:100], 90501)
    assert (await group_chat(sandbox, chat_id))["owner"] == "ahui"
    assert receiver.events == []


async def test_a_group_moves_on_job_at_most_twice_in_90_days(
        aiohttp_server: Any, sandbox: TestClient) -> None:
    chat_id = await create(sandbox, "ahui")
    await start_receiver(aiohttp_server, sandbox)
    assert await failures(sandbox, "xiaomei", chat_id) == {}
    await advance(sandbox, 45 * DAY)
    assert await failures(sandbox, "ahui", chat_id) == {}
    assert await failures(sandbox, "ading", chat_id) == {chat_id: 40128}
    await advance(sandbox, 45 * DAY)  # the first transfer is 90 days old
    assert await failures(sandbox, "ading", chat_id) == {}
    assert (await group_chat(sandbox, chat_id))["owner"] == "ading"


async def test_at_most_300_groups_a_day_from_one_owner(
        aiohttp_server: Any, sandbox: TestClient) -> None:
    chats = [await create(sandbox, "ahui") for _ in range(301)]
    other = await create(sandbox, "ading")
    receiver = await start_receiver(aiohttp_server, sandbox)
    # to 01:00 on the sandbox's next day in the tenant's zone: the calls share one day
    clock = sandbox_of(sandbox)
    local = datetime.fromtimestamp(clock.now(), clock.tenant("acme").settings.tz)
    one_am = (local + timedelta(days=1)).replace(hour=1, minute=0, second=0, microsecond=0)
    await advance(sandbox, int(one_am.timestamp() - clock.now()) + 1)
    for start in range(0, 300, 100):
        assert await failures(sandbox, "xiaomei", *chats[start:start + 100]) == {}
    assert await failures(sandbox, "xiaomei", chats[300], other) == {chats[300]: 45009}
    assert len(receiver.events) == 301
    await advance(sandbox, DAY)
    assert await failures(sandbox, "xiaomei", chats[300]) == {}
