"""客户群 in the sandbox over HTTP: groups created, joined, left, renamed and dismissed in the
client, their change_external_chat callbacks, and groupchat/list and groupchat/get."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from guidebot import events as ev
from guidebot.wecom.parse import parse_event
from tests.unit.test_sandbox import control, sandbox_of, sandbox_with_directory, start_receiver
from tests.unit.test_sandbox_transfer import api

LIST = "externalcontact/groupchat/list"
GET = "externalcontact/groupchat/get"
HEADER = ["ToUserName", "FromUserName", "CreateTime", "MsgType", "Event"]
DIRECTORY = {
    "departments": [{"id": 1, "name": "acme", "parentid": 0}],
    "members": [{"userid": "ahui", "name": "阿辉", "department": [1]},
                {"userid": "xiaomei", "name": "小美", "department": [1]}],
}


@pytest.fixture
async def sandbox(aiohttp_client: Any, tmp_path: Path) -> TestClient:
    return await sandbox_with_directory(aiohttp_client, tmp_path, DIRECTORY)


async def simulate(client: TestClient, action: str, body: dict[str, Any]) -> dict[str, Any]:
    status, answer = await control(client, f"acme/simulate/group_{action}", body)
    assert status == 200, answer
    return dict(answer)


async def refused(client: TestClient, action: str, body: dict[str, Any]) -> int:
    status, answer = await control(client, f"acme/simulate/group_{action}", body)
    assert "error" in answer
    return int(status)


async def group_chat(client: TestClient, chat_id: str, need_name: int = 0) -> dict[str, Any]:
    got = await api(client, GET, {"chat_id": chat_id, "need_name": need_name})
    assert got["errcode"] == 0, got
    return dict(got["group_chat"])


async def listed(client: TestClient, **body: Any) -> dict[str, Any]:
    return await api(client, LIST, {"limit": 10, **body})


def fields(xml: str) -> dict[str, Any]:
    """The callback's elements; MemChangeList as the list of its items."""
    root = ET.fromstring(xml)
    return {e.tag: [i.text for i in e] if e.tag == "MemChangeList" else e.text for e in root}


async def test_a_created_group_is_called_back_and_answered_by_groupchat_get(
        aiohttp_server: Any, sandbox: TestClient) -> None:
    receiver = await start_receiver(aiohttp_server, sandbox)
    await control(sandbox, "acme/simulate/add_contact", {
        "userid": "ahui", "external_userid": "wmCustomer", "name": "王小明",
        "unionid": "oUnion1", "deliver": False})
    before = int(sandbox_of(sandbox).now())
    created = await simulate(sandbox, "create", {
        "owner": "ahui", "name": "VIP 群", "notice": "欢迎",
        "members": ["wmCustomer", "xiaomei", "wmStranger"]})
    chat_id = created["chat_id"]
    assert re.fullmatch(r"wr[A-Za-z0-9]{30}", chat_id) and created["delivery"]["status"] == 200
    [event] = receiver.events
    assert event["order"] == [*HEADER, "ChatId", "ChangeType"]
    assert (event["FromUserName"], event["Event"], event["ChatId"], event["ChangeType"]) == (
        "sys", "change_external_chat", chat_id, "create")
    parsed = parse_event("acme", receiver.plaintexts[0])  # as the bot reads it
    assert isinstance(parsed, ev.GroupChatChanged)
    assert (parsed.chat_id, parsed.change_type) == (chat_id, "create")

    got = await group_chat(sandbox, chat_id)
    assert (got["chat_id"], got["name"], got["owner"], got["notice"], got["admin_list"]) == (
        chat_id, "VIP 群", "ahui", "欢迎", [])
    assert before <= got["create_time"] <= before + 1
    assert re.fullmatch(r"[0-9a-f]{32}", got["member_version"])
    join_time = got["create_time"]
    assert got["member_list"] == [
        {"userid": "ahui", "type": 1, "join_time": join_time, "join_scene": 1,
         "group_nickname": ""},
        {"userid": "wmCustomer", "type": 2, "unionid": "oUnion1", "join_time": join_time,
         "join_scene": 1, "invitor": {"userid": "ahui"}, "group_nickname": ""},
        {"userid": "xiaomei", "type": 1, "join_time": join_time, "join_scene": 1,
         "invitor": {"userid": "ahui"}, "group_nickname": ""},
        {"userid": "wmStranger", "type": 2, "unionid": "", "join_time": join_time,
         "join_scene": 1, "invitor": {"userid": "ahui"}, "group_nickname": ""}]
    named = await group_chat(sandbox, chat_id, need_name=1)
    names = [m["name"] for m in named["member_list"]]
    assert names[:3] == ["阿辉", "王小明", "小美"] and names[3]
    assert names == [m["name"] for m in (await group_chat(sandbox, chat_id, 1))["member_list"]]
    _, state = await control(sandbox, "acme/state", method="GET")
    assert [(g["chat_id"], g["owner"], g["dismissed"]) for g in state["groups"]] == [
        (chat_id, "ahui", False)]


async def test_creating_checks_its_request(sandbox: TestClient) -> None:
    given = await simulate(sandbox, "create", {"owner": "ahui", "chat_id": "wrMine",
                                               "deliver": False})
    assert given["chat_id"] == "wrMine" and given["delivery"]["attempts"] == 0
    assert await refused(sandbox, "create", {"owner": "ahui", "chat_id": "wrMine"}) == 400
    assert await refused(sandbox, "create", {"owner": "bad id!"}) == 400
    assert await refused(sandbox, "create", {}) == 400
    assert await refused(sandbox, "create", {"owner": "ahui", "members": ["ahui"]}) == 400
    assert await refused(sandbox, "create", {"owner": "ahui", "members": ["wm1", "wm1"]}) == 400
    assert await refused(sandbox, "create", {"owner": "ahui", "members": "wm1"}) == 400


async def test_joins_and_quits_carry_member_changes_and_versions(
        aiohttp_server: Any, sandbox: TestClient) -> None:
    chat_id = (await sandbox_of(sandbox).create_group(
        "acme", "ahui", members=["xiaomei"], deliver=False))["chat_id"]
    receiver = await start_receiver(aiohttp_server, sandbox)
    first = (await group_chat(sandbox, chat_id))["member_version"]

    joined = await simulate(sandbox, "join", {"chat_id": chat_id, "members": ["wmA", "wmB"],
                                              "join_scene": 3})
    event = fields(receiver.plaintexts[0])
    assert fields(joined["xml"]) == event
    assert list(event) == [*HEADER, "ChatId", "ChangeType", "UpdateDetail", "JoinScene",
                           "MemChangeCnt", "MemChangeList", "LastMemVer", "CurMemVer"]
    assert (event["Event"], event["ChatId"], event["ChangeType"], event["UpdateDetail"]) == (
        "change_external_chat", chat_id, "update", "add_member")
    assert (event["JoinScene"], event["MemChangeCnt"], event["MemChangeList"]) == (
        "3", "2", ["wmA", "wmB"])
    second = (await group_chat(sandbox, chat_id))["member_version"]
    assert second != first and (event["LastMemVer"], event["CurMemVer"]) == (first, second)
    parsed = parse_event("acme", receiver.plaintexts[0])
    assert isinstance(parsed, ev.GroupChatChanged)
    assert parsed.members_changed == ("wmA", "wmB")

    await simulate(sandbox, "join", {"chat_id": chat_id, "members": ["wmC"],
                                     "invitor": "xiaomei"})
    await simulate(sandbox, "join", {"chat_id": chat_id, "members": ["wmD"], "join_scene": 0})
    members = {m["userid"]: m for m in (await group_chat(sandbox, chat_id))["member_list"]}
    assert [(members[m]["join_scene"], members[m].get("invitor")) for m in ("wmA", "wmC", "wmD")
            ] == [(3, None), (1, {"userid": "xiaomei"}), (1, {"userid": "ahui"})]
    assert fields(receiver.plaintexts[1])["JoinScene"] == "0"
    third = (await group_chat(sandbox, chat_id))["member_version"]

    left = await simulate(sandbox, "quit", {"chat_id": chat_id, "members": ["wmA", "xiaomei"],
                                            "quit_scene": 1})
    event = fields(left["xml"])
    assert fields(receiver.plaintexts[3]) == event
    assert list(event)[5:] == ["ChatId", "ChangeType", "UpdateDetail", "QuitScene",
                               "MemChangeCnt", "MemChangeList", "LastMemVer", "CurMemVer"]
    assert (event["UpdateDetail"], event["QuitScene"], event["MemChangeCnt"],
            event["MemChangeList"]) == ("del_member", "1", "2", ["wmA", "xiaomei"])
    got = await group_chat(sandbox, chat_id)
    assert (event["LastMemVer"], event["CurMemVer"]) == (third, got["member_version"])
    assert [m["userid"] for m in got["member_list"]] == ["ahui", "wmB", "wmC", "wmD"]
    await simulate(sandbox, "quit", {"chat_id": chat_id, "members": ["wmB"]})
    assert fields(receiver.plaintexts[4])["QuitScene"] == "0"
    rejoined = await simulate(sandbox, "join", {"chat_id": chat_id, "members": ["wmA"]})
    assert fields(rejoined["xml"])["CurMemVer"] != third  # the same members, a new version


async def test_membership_changes_that_cannot_happen(sandbox: TestClient) -> None:
    chat_id = (await sandbox_of(sandbox).create_group(
        "acme", "ahui", members=["wmA"], deliver=False))["chat_id"]
    join = {"chat_id": chat_id, "members": ["wmB"], "deliver": False}
    assert await refused(sandbox, "join", {**join, "members": ["wmA"]}) == 400  # already in
    assert await refused(sandbox, "join", {**join, "members": []}) == 400
    assert await refused(sandbox, "join", {**join, "join_scene": 1}) == 400
    assert await refused(sandbox, "join", {**join, "invitor": "xiaomei"}) == 400  # not in it
    assert await refused(sandbox, "join", {**join, "invitor": "wmA"}) == 400  # external
    assert await refused(sandbox, "join", {**join, "chat_id": "wrNone"}) == 404
    quit_ = {"chat_id": chat_id, "members": ["wmA"], "deliver": False}
    assert await refused(sandbox, "quit", {**quit_, "members": ["wmB"]}) == 400  # not in it
    assert await refused(sandbox, "quit", {**quit_, "members": ["ahui"]}) == 400  # the owner
    assert await refused(sandbox, "quit", {**quit_, "quit_scene": 3}) == 400
    assert [m["userid"] for m in (await group_chat(sandbox, chat_id))["member_list"]] == [
        "ahui", "wmA"]


async def test_renames_notices_and_owner_changes_keep_the_member_version(
        aiohttp_server: Any, sandbox: TestClient) -> None:
    chat_id = (await sandbox_of(sandbox).create_group(
        "acme", "ahui", name="旧名", members=["xiaomei", "wmA"], deliver=False))["chat_id"]
    version = (await group_chat(sandbox, chat_id))["member_version"]
    receiver = await start_receiver(aiohttp_server, sandbox)
    await simulate(sandbox, "change", {"chat_id": chat_id, "name": "新名"})
    await simulate(sandbox, "change", {"chat_id": chat_id, "notice": "今晚八点直播"})
    await simulate(sandbox, "change", {"chat_id": chat_id, "owner": "xiaomei"})
    assert [(e["order"][5:], e["ChatId"], e["ChangeType"], e["UpdateDetail"])
            for e in receiver.events] == [
        (["ChatId", "ChangeType", "UpdateDetail"], chat_id, "update", detail)
        for detail in ("change_name", "change_notice", "change_owner")]
    got = await group_chat(sandbox, chat_id)
    assert (got["name"], got["notice"], got["owner"], got["member_version"]) == (
        "新名", "今晚八点直播", "xiaomei", version)
    change = {"chat_id": chat_id, "deliver": False}
    assert await refused(sandbox, "change", change) == 400
    assert await refused(sandbox, "change", {**change, "name": "a", "notice": "b"}) == 400
    assert await refused(sandbox, "change", {**change, "owner": "wmA"}) == 400
    assert await refused(sandbox, "change", {**change, "owner": "nobody"}) == 400
    assert await refused(sandbox, "quit", {**change, "members": ["xiaomei"]}) == 400
    await simulate(sandbox, "quit", {**change, "members": ["ahui"]})  # no longer the owner


async def test_a_dismissed_group_is_not_listed_nor_answered_nor_changed(
        aiohttp_server: Any, sandbox: TestClient) -> None:
    groups = sandbox_of(sandbox)
    kept = (await groups.create_group("acme", "ahui", deliver=False))["chat_id"]
    gone = (await groups.create_group("acme", "ahui", members=["wmA"], deliver=False))["chat_id"]
    receiver = await start_receiver(aiohttp_server, sandbox)
    dismissed = await simulate(sandbox, "dismiss", {"chat_id": gone})
    assert dismissed["delivery"]["status"] == 200
    [event] = receiver.events
    assert (event["order"], event["ChatId"], event["ChangeType"]) == (
        [*HEADER, "ChatId", "ChangeType"], gone, "dismiss")
    assert [g["chat_id"] for g in (await listed(sandbox))["group_chat_list"]] == [kept]
    answer = await api(sandbox, GET, {"chat_id": gone})
    assert answer["errcode"] == 40050 and "hint" in answer["errmsg"]
    assert (await api(sandbox, GET, {"chat_id": "wrUnknown"}))["errcode"] == 40050
    assert (await api(sandbox, GET, {}))["errcode"] == 40058
    assert (await api(sandbox, GET, {"chat_id": kept, "need_name": 2}))["errcode"] == 40058
    for action, body in (("join", {"members": ["wmB"]}), ("quit", {"members": ["wmA"]}),
                         ("change", {"name": "x"}), ("dismiss", {})):
        assert await refused(sandbox, action, {"chat_id": gone, **body}) == 400
    assert len(receiver.events) == 1
    _, state = await control(sandbox, "acme/state", method="GET")
    assert [(g["chat_id"], g["dismissed"]) for g in state["groups"]] == [
        (kept, False), (gone, True)]


async def test_groupchat_list_pages_and_filters_by_owner_and_status(
        sandbox: TestClient) -> None:
    groups = sandbox_of(sandbox)
    chats = [(await groups.create_group("acme", owner, deliver=False))["chat_id"]
             for owner in ("ahui", "xiaomei", "ahui")]
    pages, cursor = [], ""
    while True:
        page = await listed(sandbox, limit=1, cursor=cursor)
        assert page["errcode"] == 0, page
        pages.append(page["group_chat_list"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert pages == [[{"chat_id": c, "status": 0}] for c in chats]
    by_ahui = await listed(sandbox, owner_filter={"userid_list": ["ahui"]})
    assert [g["chat_id"] for g in by_ahui["group_chat_list"]] == [chats[0], chats[2]]
    assert by_ahui["next_cursor"] == ""
    leaving = {**DIRECTORY["members"][1], "status": 5}  # type: ignore[index]
    await control(sandbox, "acme/directory", {"members": [leaving], "deliver": False})
    assert [(g["chat_id"], g["status"]) for g in (await listed(sandbox))["group_chat_list"]] \
        == [(chats[0], 0), (chats[1], 1), (chats[2], 0)]
    assert (await listed(sandbox, status_filter=1))["group_chat_list"] == [
        {"chat_id": chats[1], "status": 1}]
    for status_filter in (2, 3):  # no group is being inherited, nor was
        assert (await listed(sandbox, status_filter=status_filter))["group_chat_list"] == []
    await control(sandbox, "acme/directory", {"delete_members": ["ahui"], "deliver": False})
    assert [g["status"] for g in (await listed(sandbox, status_filter=1))["group_chat_list"]] \
        == [1, 1, 1]


async def test_groupchat_list_parameter_errors(sandbox: TestClient) -> None:
    for body in ({"limit": 0}, {"limit": 1001}, {"limit": "ten"},
                 {"limit": 10, "status_filter": 4},
                 {"limit": 10, "owner_filter": {"userid_list": [f"u{i}" for i in range(101)]}},
                 {"limit": 10, "owner_filter": "ahui"}, {"limit": 10, "cursor": "x"}):
        assert (await api(sandbox, LIST, body))["errcode"] == 40058, body
    assert (await api(sandbox, LIST, {}))["errcode"] == 40058  # limit is required
    for limit in (1, 1000):
        assert (await listed(sandbox, limit=limit))["errcode"] == 0
    owners = {"userid_list": [f"u{i}" for i in range(100)]}
    assert (await listed(sandbox, owner_filter=owners))["errcode"] == 0


async def test_past_1000_members_groupchat_list_needs_an_owner_filter(
        sandbox: TestClient) -> None:
    known = len(sandbox_of(sandbox).tenant("acme").members)
    follows = [{"userid": f"m{i}", "external_userid": "wmSeed"} for i in range(1000 - known)]
    status, seeded = await control(sandbox, "acme/seed", {"follows": follows})
    assert (status, seeded["members"]) == (200, 1000)
    assert (await listed(sandbox))["errcode"] == 0
    await control(sandbox, "acme/seed", {"follows": [{"userid": "m1000",
                                                      "external_userid": "wmSeed"}]})
    assert (await listed(sandbox))["errcode"] == 81017
    assert (await listed(sandbox, owner_filter={"userid_list": ["ahui"]}))["errcode"] == 0


async def test_join_ways_bring_customers_in_by_qr_with_their_state(
        aiohttp_server: Any, sandbox: TestClient) -> None:
    """群活码 (assumed API): add/get/update/del_join_way, and a customer scanning one joins
    its first live group by QR code with the way's state in groupchat/get."""
    groups = sandbox_of(sandbox)
    first = (await groups.create_group("acme", "ahui", deliver=False))["chat_id"]
    second = (await groups.create_group("acme", "ahui", deliver=False))["chat_id"]
    gone = (await groups.create_group("acme", "ahui", deliver=False))["chat_id"]
    await groups.dismiss_group("acme", gone, deliver=False)
    way = "externalcontact/groupchat/"
    made = await api(sandbox, way + "add_join_way", {
        "scene": 2, "remark": "海报", "chat_id_list": [first, second], "state": "gj1x"})
    assert made["errcode"] == 0, made
    config_id = made["config_id"]
    got = (await api(sandbox, way + "get_join_way", {"config_id": config_id}))["join_way"]
    assert (got["chat_id_list"], got["state"], got["remark"], got["scene"]) == (
        [first, second], "gj1x", "海报", 2)
    assert got["qr_code"].endswith(config_id)
    for body in ({"scene": 2, "chat_id_list": []},
                 {"scene": 2, "chat_id_list": [first] * 2},
                 {"scene": 2, "chat_id_list": [first, "a", "b", "c", "d", "e"]},
                 {"scene": 3, "chat_id_list": [first]},
                 {"scene": 2, "chat_id_list": [first], "state": "s" * 31}):
        assert (await api(sandbox, way + "add_join_way", body))["errcode"] == 40058, body
    refused_chat = await api(sandbox, way + "add_join_way",
                             {"scene": 2, "chat_id_list": [gone]})
    assert refused_chat["errcode"] == 40050

    receiver = await start_receiver(aiohttp_server, sandbox)
    joined = await simulate(sandbox, "join_way", {"config_id": config_id,
                                                   "members": ["wmScan"]})
    assert joined["chat_id"] == first
    [event] = receiver.events
    assert (event["UpdateDetail"], event["JoinScene"]) == ("add_member", "3")
    member = (await group_chat(sandbox, first))["member_list"][-1]
    assert (member["userid"], member["join_scene"], member["state"]) == ("wmScan", 3, "gj1x")

    updated = await api(sandbox, way + "update_join_way", {
        "config_id": config_id, "scene": 2, "chat_id_list": [second], "state": "gj1x"})
    assert updated["errcode"] == 0
    assert (await simulate(sandbox, "join_way", {"config_id": config_id,
                                                  "members": ["wmNext"]}))["chat_id"] == second
    assert (await api(sandbox, way + "del_join_way", {"config_id": config_id}))["errcode"] == 0
    assert (await api(sandbox, way + "get_join_way",
                      {"config_id": config_id}))["errcode"] == 40058
    status, _ = await control(sandbox, "acme/simulate/group_join_way",
                              {"config_id": config_id, "members": ["wmLate"]})
    assert status == 404
