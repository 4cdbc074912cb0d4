"""获客助手 links in the sandbox over HTTP (FACTS-next §F): customer_acquisition/create_link,
get, update_link, list_link, delete_link and customer, their limits, and a customer adding a
member through a link's url with a customer_channel."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient

from tests.unit.test_sandbox import control, sandbox_of, sandbox_with_directory, start_receiver
from tests.unit.test_sandbox_transfer import api

PATH = "externalcontact/customer_acquisition"
DIRECTORY = {
    "departments": [{"id": 1, "name": "acme", "parentid": 0},
                    {"id": 2, "name": "上海店", "parentid": 1}],
    "members": [{"userid": "zhangsan", "name": "张三", "department": [1]},
                {"userid": "tom", "name": "汤姆", "department": [2]},
                {"userid": "leaver", "name": "离职", "department": [1], "status": 5}],
}
LINK = {"link_name": "获客链接1号", "range": {"user_list": ["zhangsan"], "department_list": [2]},
        "skip_verify": True, "priority_option": {"priority_type": 2,
                                                 "priority_userid_list": ["tom"]},
        "mark_source": True}


@pytest.fixture
async def sandbox(aiohttp_client: Any, tmp_path: Path) -> TestClient:
    return await sandbox_with_directory(aiohttp_client, tmp_path, DIRECTORY)


async def created(client: TestClient, **body: Any) -> dict[str, Any]:
    answer = await api(client, f"{PATH}/create_link", body)
    assert (answer["errcode"], answer["errmsg"]) == (0, "ok"), answer
    return dict(answer["link"])


async def code(client: TestClient, action: str, **body: Any) -> int:
    return int((await api(client, f"{PATH}/{action}", body))["errcode"])


async def test_links_are_created_read_updated_listed_and_deleted(sandbox: TestClient) -> None:
    link = await created(sandbox, **LINK)
    assert set(link) == {"link_id", "link_name", "url", "create_time"}
    assert link["link_name"] == "获客链接1号" and isinstance(link["create_time"], int)
    assert link["url"] == f"https://sandbox.invalid/ca/{link['link_id']}"
    assert await api(sandbox, f"{PATH}/get", {"link_id": link["link_id"]}) == {
        "errcode": 0, "errmsg": "ok",
        "link": {**link, "skip_verify": True, "mark_source": True},
        "range": {"user_list": ["zhangsan"], "department_list": [2]},
        "priority_option": {"priority_type": 2, "priority_userid_list": ["tom"]}}

    plain = await created(sandbox, link_name="门店", range={"user_list": ["tom"]})
    got = await api(sandbox, f"{PATH}/get", {"link_id": plain["link_id"]})
    assert (got["link"]["skip_verify"], got["link"]["mark_source"]) == (True, False)
    assert (got["range"], got["priority_option"]) == (
        {"user_list": ["tom"], "department_list": []}, {})

    updated = await api(sandbox, f"{PATH}/update_link", {
        "link_id": plain["link_id"], "link_name": "门店2", "skip_verify": False,
        "range": {"department_list": [1]}})
    assert (updated["errcode"], updated["errmsg"]) == (0, "ok")
    got = await api(sandbox, f"{PATH}/get", {"link_id": plain["link_id"]})
    assert (got["link"]["link_name"], got["link"]["skip_verify"], got["link"]["url"]) == (
        "门店2", False, plain["url"])
    assert got["range"] == {"user_list": [], "department_list": [1]}

    third = await created(sandbox, link_name="第三", range={"user_list": ["zhangsan"]})
    first = await api(sandbox, f"{PATH}/list_link", {"limit": 2})
    assert first["link_id_list"] == [link["link_id"], plain["link_id"]]
    rest = await api(sandbox, f"{PATH}/list_link", {"limit": 2,
                                                    "cursor": first["next_cursor"]})
    assert (rest["link_id_list"], rest["next_cursor"]) == ([third["link_id"]], "")

    assert await code(sandbox, "delete_link", link_id=plain["link_id"]) == 0
    for action in ("get", "delete_link", "update_link", "customer"):
        assert await code(sandbox, action, link_id=plain["link_id"]) == 40058, action
    listed = await api(sandbox, f"{PATH}/list_link", {})
    assert listed["link_id_list"] == [link["link_id"], third["link_id"]]
    status, state = await control(sandbox, "acme/state", method="GET")
    assert status == 200
    assert [v["link"]["link_id"] for v in state["acquisition_links"]] == listed["link_id_list"]


async def test_requests_are_checked(sandbox: TestClient) -> None:
    users = [f"guide{n}" for n in range(500)]
    await created(sandbox, link_name="五百", range={"user_list": users})
    refused = {"range": {"user_list": [*users, "guide500"]}}
    assert await code(sandbox, "create_link", link_name="太多", **refused) == 40058
    assert await code(sandbox, "create_link", link_name="离职",
                      range={"user_list": ["zhangsan", "leaver"]}) == 40058
    assert await code(sandbox, "create_link", link_name="无部门",
                      range={"department_list": [9]}) == 40058
    assert await code(sandbox, "create_link", link_name="空", range={}) == 40058
    assert await code(sandbox, "create_link", range={"user_list": ["tom"]}) == 40058
    assert await code(sandbox, "create_link", link_name="名" * 31,
                      range={"user_list": ["tom"]}) == 40058
    assert await code(sandbox, "create_link", link_name="坏",
                      range={"user_list": ["-bad"]}) == 40003
    assert await code(sandbox, "create_link", link_name="x", range={"user_list": ["tom"]},
                      skip_verify="yes") == 40058
    assert await code(sandbox, "list_link", limit=101) == 40058
    link = await created(sandbox, link_name="好", range={"user_list": ["tom"]})
    assert await code(sandbox, "update_link", link_id=link["link_id"],
                      range={"user_list": ["leaver"]}) == 40058
    assert await code(sandbox, "update_link", link_id=link["link_id"], link_name="") == 40058
    assert await code(sandbox, "customer", link_id=link["link_id"], limit=1001) == 40058
    status, state = await control(sandbox, "acme/state", method="GET")
    assert [v["link"]["link_name"] for v in state["acquisition_links"]] == ["五百", "好"]
    assert state["acquisition_links"][1]["range"]["user_list"] == ["tom"]


async def test_a_tenant_keeps_at_most_100_links(sandbox: TestClient) -> None:
    links = [await created(sandbox, link_name=f"链接{n}", range={"user_list": ["tom"]})
             for n in range(100)]
    full = await api(sandbox, f"{PATH}/create_link",
                     {"link_name": "再一个", "range": {"user_list": ["tom"]}})
    assert full["errcode"] == 41095 and "link" not in full
    assert await code(sandbox, "delete_link", link_id=links[0]["link_id"]) == 0
    await created(sandbox, link_name="再一个", range={"user_list": ["tom"]})


async def test_a_customer_adding_through_a_link_carries_its_channel(
    aiohttp_server: Any, sandbox: TestClient
) -> None:
    receiver = await start_receiver(aiohttp_server, sandbox)
    link = await created(sandbox, **LINK)
    channel = "直播间-0423"
    status, added = await control(sandbox, "acme/simulate/acquisition_add", {
        "url": f"{link['url']}?customer_channel={quote(channel)}", "name": "王静"})
    assert status == 200, added
    assert (added["link_id"], added["userid"], added["state"]) == (
        link["link_id"], "zhangsan", channel)
    assert added["delivery"]["status"] == 200
    [event] = receiver.events
    assert (event["ChangeType"], event["UserID"], event["State"], event["ExternalUserID"]) == (
        "add_external_contact", "zhangsan", channel, added["external_userid"])
    customer = await api(sandbox, "externalcontact/get", external_userid=added["external_userid"])
    assert [(f["userid"], f["state"], f["add_way"]) for f in customer["follow_user"]] == [
        ("zhangsan", channel, 16)]

    # The given member when the range has them (tom through department 2), else the first.
    second = await sandbox_of(sandbox).simulate_acquisition_add(
        "acme", f"{link['url']}?customer_channel=c2", userid="tom", external_userid="wmSecond")
    third = await sandbox_of(sandbox).simulate_acquisition_add(
        "acme", link["url"], userid="stranger", deliver=False)
    assert [(a["userid"], a["state"]) for a in (second, third)] == [("tom", "c2"),
                                                                   ("zhangsan", "")]
    assert [e["UserID"] for e in receiver.events] == ["zhangsan", "tom"]

    listed = await api(sandbox, f"{PATH}/customer", {"link_id": link["link_id"], "limit": 2})
    assert listed["customer_list"] == [
        {"external_userid": added["external_userid"], "userid": "zhangsan", "chat_status": 0,
         "state": channel},
        {"external_userid": "wmSecond", "userid": "tom", "chat_status": 0, "state": "c2"}]
    rest = await api(sandbox, f"{PATH}/customer", {"link_id": link["link_id"],
                                                   "cursor": listed["next_cursor"]})
    assert [(c["userid"], c["state"]) for c in rest["customer_list"]] == [("zhangsan", "")]
    assert rest["next_cursor"] == ""
    status, state = await control(sandbox, "acme/state", method="GET")
    assert len(state["acquisition_links"][0]["customers"]) == 3


async def test_an_add_through_no_live_link_or_a_long_channel_is_refused(
    sandbox: TestClient
) -> None:
    link = await created(sandbox, link_name="好", range={"user_list": ["tom"]})
    for url in (f"{link['url']}?customer_channel={'c' * 65}",
                f"{link['url']}?customer_channel={quote('渠' * 22)}",  # 66 bytes
                "https://sandbox.invalid/ca/cawcUnknown",
                link["url"].replace("sandbox.invalid", "example.com"),
                "not a url"):
        status, answer = await control(sandbox, "acme/simulate/acquisition_add", {"url": url})
        assert status == 400 and "error" in answer, url
    status, _ = await control(sandbox, "acme/simulate/acquisition_add", {})
    assert status == 400
    status, ok = await control(sandbox, "acme/simulate/acquisition_add", {
        "url": f"{link['url']}?customer_channel={'c' * 64}", "deliver": False})
    assert status == 200 and ok["state"] == "c" * 64
    await api(sandbox, f"{PATH}/delete_link", {"link_id": link["link_id"]})
    status, _ = await control(sandbox, "acme/simulate/acquisition_add", {"url": link["url"]})
    assert status == 400
    assert re.fullmatch(r"cawc[A-Za-z0-9]{28}", link["link_id"])


async def test_an_updated_link_gives_later_adds_to_its_new_members(sandbox: TestClient) -> None:
    """update_link is checked as create_link is (a refused field changes nothing, not even the
    fields given with it) and a new range decides who the next customer adds."""
    link = await created(sandbox, link_name="门店", range={"user_list": ["zhangsan"]})
    for refused, errcode in (({"range": {"user_list": ["tom", "leaver"]}}, 40058),
                             ({"range": {"user_list": ["tom", "-bad"]}}, 40003),
                             ({"range": {"user_list": [f"g{n}" for n in range(501)]}}, 40058),
                             ({"range": {"user_list": []}}, 40058),
                             ({"link_name": "名" * 31, "range": {"user_list": ["tom"]}}, 40058),
                             ({"range": {"user_list": ["tom"]}, "mark_source": "yes"}, 40058)):
        assert await code(sandbox, "update_link", link_id=link["link_id"],
                          **refused) == errcode, refused
    got = await api(sandbox, f"{PATH}/get", {"link_id": link["link_id"]})
    assert (got["link"]["link_name"], got["range"]["user_list"]) == ("门店", ["zhangsan"])
    first = await sandbox_of(sandbox).simulate_acquisition_add("acme", link["url"],
                                                               deliver=False)
    assert first["userid"] == "zhangsan"

    assert await code(sandbox, "update_link", link_id=link["link_id"], link_name="门店二",
                      range={"user_list": ["tom"]}) == 0
    got = await api(sandbox, f"{PATH}/get", {"link_id": link["link_id"]})
    assert (got["link"]["link_name"], got["link"]["url"], got["range"]["user_list"]) == (
        "门店二", link["url"], ["tom"])
    later = await sandbox_of(sandbox).simulate_acquisition_add(
        "acme", f"{link['url']}?customer_channel=gbX", userid="zhangsan", deliver=False)
    assert (later["userid"], later["state"]) == ("tom", "gbX")  # zhangsan is out of the range
    assert await code(sandbox, "update_link", link_id="cawcUnknown",
                      range={"user_list": ["tom"]}) == 40058
