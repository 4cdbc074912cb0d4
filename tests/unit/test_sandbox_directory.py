"""The sandbox's address book over HTTP: seeding, WeCom's read APIs and change_contact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from guidebot.sandbox import create_sandbox_app
from guidebot.settings import load_settings
from tests.unit.test_sandbox import CONFIG, call, control, get_token, start_receiver

DIRECTORY = {
    "departments": [{"id": 1, "name": "acme", "parentid": 0},
                    {"id": 10, "name": "华东区", "parentid": 1},
                    {"id": 11, "name": "滨江店", "parentid": 10},
                    {"id": 12, "name": "西湖店", "parentid": 10}],
    "members": [{"userid": "xiaomei", "name": "小美", "department": [11]},
                {"userid": "ahui", "name": "阿辉", "department": [11, 12],
                 "main_department": 12},
                {"userid": "boss", "name": "老板", "department": [1], "status": 2}],
}


@pytest.fixture
async def sandbox(aiohttp_client: Any, tmp_path: Path) -> TestClient:
    (tmp_path / "content_library").mkdir()
    (tmp_path / "config.toml").write_text(CONFIG, encoding="utf-8")
    return await aiohttp_client(create_sandbox_app(load_settings(tmp_path / "config.toml")))


async def seed(client: TestClient, body: dict[str, Any] = DIRECTORY, deliver: bool = False
               ) -> dict[str, Any]:
    status, answer = await control(client, "acme/directory", {**body, "deliver": deliver})
    assert status == 200, answer
    return dict(answer)


async def test_user_get_answers_seeded_members_and_60111_for_unknown_ones(
        sandbox: TestClient) -> None:
    await seed(sandbox)
    token = await get_token(sandbox)
    member = await call(sandbox, "user/get", token, userid="ahui")
    assert member == {"errcode": 0, "errmsg": "ok", "userid": "ahui", "name": "阿辉",
                      "department": [11, 12], "main_department": 12, "position": "",
                      "status": 1}
    assert (await call(sandbox, "user/get", token, userid="boss"))["status"] == 2
    unseeded = await call(sandbox, "user/get", token, userid="nobody")  # any userid is a member
    assert (unseeded["errcode"], unseeded["name"], unseeded["department"]) == (0, "", [])
    assert (await call(sandbox, "user/get", token))["errcode"] == 40058


async def test_departments_list_ids_and_get_names(sandbox: TestClient) -> None:
    await seed(sandbox)
    token = await get_token(sandbox)
    listed = await call(sandbox, "department/simplelist", token)
    assert [d["id"] for d in listed["department_id"]] == [1, 10, 11, 12]
    assert listed["department_id"][2] == {"id": 11, "parentid": 10, "order": 0}
    below = await call(sandbox, "department/simplelist", token, id="10")
    assert [d["id"] for d in below["department_id"]] == [10, 11, 12]
    got = await call(sandbox, "department/get", token, id="12")
    assert got["department"]["name"] == "西湖店" and got["department"]["parentid"] == 10
    assert got["department"]["department_leader"] == []
    assert (await call(sandbox, "department/get", token, id="99"))["errcode"] == 60123
    assert (await call(sandbox, "department/simplelist", token, id="x"))["errcode"] == 60123


async def test_department_get_names_the_seeded_leaders(sandbox: TestClient) -> None:
    await seed(sandbox)
    status, _ = await control(sandbox, "acme/directory", {"departments": [
        {"id": 12, "name": "西湖店", "parentid": 10, "department_leader": ["wangli", "chen"]}]})
    assert status == 200
    got = await call(sandbox, "department/get", await get_token(sandbox), id="12")
    assert got["department"]["department_leader"] == ["wangli", "chen"]


async def test_simplelist_by_department_with_and_without_children(sandbox: TestClient) -> None:
    await seed(sandbox)
    token = await get_token(sandbox)
    own = await call(sandbox, "user/simplelist", token, department_id="11")
    assert [u["userid"] for u in own["userlist"]] == ["xiaomei", "ahui"]
    assert own["userlist"][0] == {"userid": "xiaomei", "name": "小美", "department": [11]}
    region = await call(sandbox, "user/simplelist", token, department_id="10")
    assert region["userlist"] == []
    deep = await call(sandbox, "user/simplelist", token, department_id="10", fetch_child="1")
    assert [u["userid"] for u in deep["userlist"]] == ["xiaomei", "ahui"]
    assert (await call(sandbox, "user/simplelist", token, department_id="77"))["errcode"] == 60123


async def test_list_id_pages_member_department_pairs_with_a_cursor(sandbox: TestClient) -> None:
    await seed(sandbox)
    token = await get_token(sandbox)
    first = await call(sandbox, "user/list_id", token, {"limit": 2})
    assert first["dept_user"] == [{"userid": "xiaomei", "department": 11},
                                  {"userid": "ahui", "department": 11}]
    second = await call(sandbox, "user/list_id", token, {"limit": 2,
                                                        "cursor": first["next_cursor"]})
    assert second["dept_user"] == [{"userid": "ahui", "department": 12},
                                   {"userid": "boss", "department": 1}]
    assert second["next_cursor"] == ""
    assert (await call(sandbox, "user/list_id", token, {"limit": 10001}))["errcode"] == 40058


async def test_seeding_calls_back_change_contact_and_shows_in_state(
        aiohttp_server: Any, sandbox: TestClient) -> None:
    receiver = await start_receiver(aiohttp_server, sandbox)
    answer = await seed(sandbox, deliver=True)
    assert answer["changes"][:4] == ["create_party:1", "create_party:10", "create_party:11",
                                     "create_party:12"]
    renamed = {"members": [{"userid": "xiaomei", "name": "小美美", "department": [12]}],
               "delete_members": ["boss"]}
    assert (await seed(sandbox, renamed, deliver=True))["changes"] == [
        "update_user:xiaomei", "delete_user:boss"]
    events = [e for e in receiver.events if e["Event"] == "change_contact"]
    assert len(events) == 9
    update = events[7]
    assert (update["ChangeType"], update["UserID"], update["Name"], update["Department"],
            update["MainDepartment"]) == ("update_user", "xiaomei", "小美美", "12", "12")
    assert (events[8]["ChangeType"], events[8]["UserID"]) == ("delete_user", "boss")
    assert events[1]["ParentId"] == "1" and events[1]["Name"] == "华东区"
    status, state = await control(sandbox, "acme/state", method="GET")
    assert status == 200
    assert [m["userid"] for m in state["directory"]["members"]] == ["xiaomei", "ahui"]
    assert state["directory"]["removed"] == ["boss"]
    assert "xiaomei" in state["members"]
    token = await get_token(sandbox)
    assert (await call(sandbox, "user/get", token, userid="boss"))["errcode"] == 60111


async def test_bad_directory_requests_change_nothing(sandbox: TestClient) -> None:
    bad = [
        {"members": [{"userid": "x", "name": "X", "department": [5]}]},  # no department 5
        {"departments": [{"id": 0, "name": "zero"}]},
        {"departments": [{"id": 1, "name": "ok", "department_leader": "lina"}]},
        {"departments": [{"id": 1, "name": "ok", "department_leader": ["-bad"]}]},
        {"members": [{"userid": "-bad", "name": "X", "department": [1]}]},
        {"members": [{"userid": "x", "name": "X", "department": [1], "status": 3}]},
        {"members": [{"userid": "x", "name": "X", "department": [1], "colour": "red"}]},
        {"delete_members": ["ghost"]},
        {"departments": [{"id": 1, "name": "ok"}], "members": "everyone"},
    ]
    for body in bad:
        status, answer = await control(sandbox, "acme/directory", body)
        assert status == 400, (body, answer)
    _, state = await control(sandbox, "acme/state", method="GET")
    assert state["directory"] == {"departments": [], "members": [], "removed": []}
