"""企业群发 to customer groups (add_msg_template chat_type "group") in the sandbox over HTTP:
the groups a message goes to, its fail_list and refusals, get_groupmsg_list_v2's chat_type,
confirmation in the client with statuses 1, 2 and 3 (a group's monthly quota), the state."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.unit.test_sandbox import control, sandbox_of, sandbox_with_directory
from tests.unit.test_sandbox_transfer import api, seed

ADD = "externalcontact/add_msg_template"
LIST = "externalcontact/get_groupmsg_list_v2"
TASKS = "externalcontact/get_groupmsg_task"
RESULT = "externalcontact/get_groupmsg_send_result"
INVALID_PARAM, INVALID_USERID, TEXT_EMPTY = 40058, 40003, 44004
DIRECTORY = {
    "departments": [{"id": 1, "name": "acme", "parentid": 0}],
    "members": [{"userid": "ahui", "name": "阿辉", "department": [1]},
                {"userid": "xiaomei", "name": "小美", "department": [1]}],
}
TEXT = {"content": "周末群里有新品试穿"}


@pytest.fixture
async def sandbox(aiohttp_client: Any, tmp_path: Path) -> TestClient:
    return await sandbox_with_directory(aiohttp_client, tmp_path, DIRECTORY)


async def group(client: TestClient, owner: str, chat_id: str, *members: str) -> str:
    status, answer = await control(client, "acme/simulate/group_create", {
        "owner": owner, "chat_id": chat_id, "members": list(members), "deliver": False})
    assert status == 200, answer
    return chat_id


async def simulate(client: TestClient, action: str, body: dict[str, Any]) -> None:
    status, answer = await control(client, f"acme/simulate/group_{action}",
                                   {**body, "deliver": False})
    assert status == 200, answer


async def send(client: TestClient, **body: Any) -> dict[str, Any]:
    return await api(client, ADD, {"chat_type": "group", "text": TEXT, **body})


async def sent(client: TestClient, **body: Any) -> tuple[str, list[str]]:
    """A group message that WeCom took: its msgid and fail_list."""
    answer = await send(client, **body)
    assert answer["errcode"] == 0, answer
    return answer["msgid"], answer["fail_list"]


async def confirm(client: TestClient, msgid: str, userid: str = "ahui") -> dict[str, Any]:
    status, answer = await control(client, "acme/confirm_groupmsg",
                                   {"msgid": msgid, "userid": userid})
    assert status == 200, answer
    return dict(answer)


async def results(client: TestClient, msgid: str, userid: str = "ahui") -> list[tuple[Any, ...]]:
    got = await api(client, RESULT, {"msgid": msgid, "userid": userid})
    assert got["errcode"] == 0, got
    return [(s["external_userid"], s["chat_id"], s["userid"], s["status"])
            for s in got["send_list"]]


async def listed(client: TestClient, **body: Any) -> list[str]:
    got = await api(client, LIST, {"start_time": 0, "end_time": 2**31 - 1, **body})
    assert got["errcode"] == 0, got
    return [m["msgid"] for m in got["group_msg_list"]]


async def state_template(client: TestClient, msgid: str) -> dict[str, Any]:
    status, state = await control(client, "acme/state", method="GET")
    assert status == 200
    [template] = [t for t in state["msg_templates"] if t["msgid"] == msgid]
    return dict(template)


async def test_a_group_message_goes_to_every_live_group_the_sender_owns(
        sandbox: TestClient) -> None:
    first = await group(sandbox, "ahui", "wrFirst", "wmA")
    second = await group(sandbox, "ahui", "wrSecond")
    await group(sandbox, "xiaomei", "wrTheirs")
    gone = await group(sandbox, "ahui", "wrGone")
    await simulate(sandbox, "dismiss", {"chat_id": gone})
    msgid, fail_list = await sent(sandbox, sender="ahui", allow_select=True)
    assert fail_list == []
    tasks = await api(sandbox, TASKS, {"msgid": msgid})
    assert [(t["userid"], t["status"]) for t in tasks["task_list"]] == [("ahui", 0)]
    assert await results(sandbox, msgid) == [
        ("", first, "ahui", 0), ("", second, "ahui", 0)]
    template = await state_template(sandbox, msgid)
    assert (template["chat_type"], template["creator"], template["text"]) == (
        "group", "ahui", TEXT)
    assert template["tasks"][0]["recipients"] == {first: 0, second: 0}

    before = int(sandbox_of(sandbox).now())
    answer = await confirm(sandbox, msgid)
    assert answer["recipients"] == {first: 1, second: 1} and answer["status"] == 1
    got = await api(sandbox, RESULT, {"msgid": msgid, "userid": "ahui"})
    assert [(s["external_userid"], s["chat_id"], s["status"]) for s in got["send_list"]] == [
        ("", first, 1), ("", second, 1)]
    assert all(s["send_time"] >= before for s in got["send_list"])
    tasks = await api(sandbox, TASKS, {"msgid": msgid})
    assert [(t["userid"], t["status"]) for t in tasks["task_list"]] == [("ahui", 1)]
    assert (await state_template(sandbox, msgid))["tasks"][0]["recipients"] == {
        first: 1, second: 1}


async def test_listed_chats_that_are_not_the_senders_live_groups_are_the_fail_list(
        sandbox: TestClient) -> None:
    mine = await group(sandbox, "ahui", "wrMine")
    await group(sandbox, "ahui", "wrNotListed")
    theirs = await group(sandbox, "xiaomei", "wrTheirs")
    gone = await group(sandbox, "ahui", "wrGone")
    await simulate(sandbox, "dismiss", {"chat_id": gone})
    msgid, fail_list = await sent(sandbox, sender="ahui", chat_id_list=[
        theirs, mine, gone, "wrNoSuchChat", mine])
    assert fail_list == [theirs, gone, "wrNoSuchChat"]
    assert await results(sandbox, msgid) == [("", mine, "ahui", 0)]


async def test_group_messages_the_sandbox_refuses(sandbox: TestClient) -> None:
    await seed(sandbox, "ahui", "wmA")
    mine = await group(sandbox, "ahui", "wrMine", "wmA")
    theirs = await group(sandbox, "xiaomei", "wrTheirs")
    refused: dict[str, dict[str, Any]] = {
        "more than 2000 chats": {"sender": "ahui", "chat_id_list": [mine] * 2001},
        "external_userid given": {"sender": "ahui", "external_userid": ["wmA"]},
        "no sender": {"chat_id_list": [mine]},
        "a tag filter": {"sender": "ahui", "tag_filter": {"group_list": [{"tag_list": ["et1"]}]}},
        "no listed chat of the sender's": {"sender": "ahui", "chat_id_list": [theirs]},
        "a sender with no group": {"sender": "nogroups"},
        "an unknown chat_type": {"sender": "ahui", "chat_type": "room"},
    }
    for case, body in refused.items():
        answer = await send(sandbox, **body)
        assert answer["errcode"] == INVALID_PARAM, case
    assert "no group to send to" in (await send(sandbox, sender="nogroups"))["errmsg"]
    assert (await send(sandbox, sender="not a userid!"))["errcode"] == INVALID_USERID
    assert (await send(sandbox, sender="ahui", text={"content": ""}))["errcode"] == TEXT_EMPTY
    assert (await send(sandbox, sender="ahui", chat_id_list=[mine] * 2000))["errcode"] == 0
    assert len(await listed(sandbox, chat_type="group")) == 1  # the refused made none


async def test_list_v2_lists_a_template_for_its_own_chat_type_only(
        sandbox: TestClient) -> None:
    await seed(sandbox, "ahui", "wmA")
    await group(sandbox, "ahui", "wrMine", "wmA")
    single = await api(sandbox, ADD, {"sender": "ahui", "external_userid": ["wmA"],
                                      "text": TEXT})
    assert single["errcode"] == 0 and single["fail_list"] == []
    grouped, _ = await sent(sandbox, sender="ahui")
    assert await listed(sandbox, chat_type="single") == [single["msgid"]]
    assert await listed(sandbox) == [single["msgid"]]  # chat_type defaults to single
    assert await listed(sandbox, chat_type="group") == [grouped]
    assert await listed(sandbox, chat_type="group", creator="xiaomei") == []
    # the single template is unchanged: its items name customers, its state chat_type single
    await confirm(sandbox, single["msgid"])
    assert await results(sandbox, single["msgid"]) == [("wmA", "", "ahui", 1)]
    assert (await state_template(sandbox, single["msgid"]))["chat_type"] == "single"


async def test_a_group_dismissed_or_handed_over_before_confirmation_gets_status_2(
        sandbox: TestClient) -> None:
    kept = await group(sandbox, "ahui", "wrKept")
    dismissed = await group(sandbox, "ahui", "wrDismissed")
    handed = await group(sandbox, "ahui", "wrHanded", "xiaomei")
    msgid, _ = await sent(sandbox, sender="ahui")
    await simulate(sandbox, "dismiss", {"chat_id": dismissed})
    await simulate(sandbox, "change", {"chat_id": handed, "owner": "xiaomei"})
    await confirm(sandbox, msgid)
    assert await results(sandbox, msgid) == [
        ("", kept, "ahui", 1), ("", dismissed, "ahui", 2), ("", handed, "ahui", 2)]
    got = await api(sandbox, RESULT, {"msgid": msgid, "userid": "ahui"})
    assert [s["send_time"] > 0 for s in got["send_list"]] == [True, False, False]
    status, _ = await control(sandbox, "acme/confirm_groupmsg",
                              {"msgid": msgid, "userid": "xiaomei"})
    assert status == 404  # the task is the sender's only


async def test_a_group_receives_as_many_group_messages_a_month_as_the_month_has_days(
        sandbox: TestClient) -> None:
    # Start at 01:00 on the 1st of next month (tenant time): the test stays in one month.
    zone = sandbox_of(sandbox).tenant("acme").settings.tz
    now = datetime.fromtimestamp(sandbox_of(sandbox).now(), zone)
    next_month = now.replace(day=1) + timedelta(days=32)
    start = next_month.replace(day=1, hour=1, minute=0, second=0, microsecond=0)
    status, _ = await control(sandbox, "clock", {"seconds": start.timestamp() - now.timestamp()})
    assert status == 200
    days = calendar.monthrange(start.year, start.month)[1]
    busy = await group(sandbox, "ahui", "wrBusy")
    for _ in range(days):
        msgid, _ = await sent(sandbox, sender="ahui", chat_id_list=[busy])
        assert (await confirm(sandbox, msgid))["recipients"] == {busy: 1}
    fresh = await group(sandbox, "ahui", "wrFresh")
    unconfirmed, _ = await sent(sandbox, sender="ahui", chat_id_list=[busy])
    over, _ = await sent(sandbox, sender="ahui")
    await confirm(sandbox, over)
    assert await results(sandbox, over) == [("", busy, "ahui", 3), ("", fresh, "ahui", 1)]
    # next month the group may receive again (the unconfirmed message was not counted)
    status, _ = await control(sandbox, "clock", {"seconds": 32 * 86400})
    assert status == 200
    await confirm(sandbox, unconfirmed)
    assert await results(sandbox, unconfirmed) == [("", busy, "ahui", 1)]
