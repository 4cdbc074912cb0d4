"""Address-book sync against the sandbox: guides' names, status and stores from WeCom, in the
welcome, in the admin API and in SOP texts; on change_contact, at start, daily, on first sight."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from guidebot import jobs
from guidebot.app import RUNTIME, create_app
from guidebot.db.repo import contacts as contacts_repo
from guidebot.db.types import utcnow
from tests.scenario.test_sop_flow import _local_day
from tests.support.stack import FAST_BACKOFF, Stack, library_copy, start_stack

NO_MAPPING = "# no [[stores]]: every department is a store of its own\n"
MAPPING = """
[[stores]]
id = "HZ01"
name = "杭州湖滨银泰店"
departments = [21, 22]

[[stores]]
id = "HZ02"
name = "杭州快闪店"
guides = ["popup"]
"""
DIRECTORY: dict[str, Any] = {
    "departments": [{"id": 1, "name": "acme", "parentid": 0},
                    {"id": 20, "name": "华东区", "parentid": 1},
                    {"id": 21, "name": "湖滨一组", "parentid": 20},
                    {"id": 22, "name": "湖滨二组", "parentid": 20},
                    {"id": 23, "name": "西溪印象城店", "parentid": 20}],
    "members": [{"userid": "xiaomei", "name": "林小美", "department": [21]},
                {"userid": "ahui", "name": "陈阿辉", "department": [22]},
                {"userid": "qing", "name": "王青", "department": [23]},
                {"userid": "popup", "name": "周快", "department": [23]},
                {"userid": "hq", "name": "总部运营", "department": [1]}],
}


async def _stack(aiohttp_server: Any, tmp_path: Path, db_url: str, stores: str) -> Stack:
    library = library_copy(tmp_path, {"stores.toml": stores})
    stack = await start_stack(aiohttp_server, tmp_path, db_url, library=library)
    await asyncio.gather(*list(stack.runtime.background))  # the sync at start (empty book)
    return stack


@pytest.fixture
async def book(aiohttp_server, tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    """The stack with no brand guides and no store mapping: departments are stores."""
    s = await _stack(aiohttp_server, tmp_path, db_url, NO_MAPPING)
    yield s
    await s.http.close()


@pytest.fixture
async def mapped(aiohttp_server, tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    s = await _stack(aiohttp_server, tmp_path, db_url, MAPPING)
    yield s
    await s.http.close()


async def seed(stack: Stack, body: dict[str, Any], *, deliver: bool) -> dict[str, Any]:
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/acme/directory",
                               json={**body, "deliver": deliver}) as resp:
        assert resp.status == 200, await resp.text()
        answer: dict[str, Any] = await resp.json()
    await stack.runtime.drain()
    return answer


async def fault(stack: Stack, path: str, errcode: int, times: int) -> None:
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/faults", json={
            "tenant": "acme", "path": path, "errcode": errcode, "times": times}) as resp:
        assert resp.status == 200, await resp.text()


async def guides(stack: Stack) -> dict[str, dict[str, Any]]:
    status, body = await stack.admin("/guides")
    assert status == 200
    return {g["userid"]: g for g in body["guides"]}


async def names(stack: Stack, *userids: str) -> dict[str, tuple[str, str]]:
    """(guide name, store name) as SOP texts and the welcome read them."""
    async with stack.runtime.services.db.read() as s:
        return await contacts_repo.guide_names(s, tenant="acme", userids=list(userids))


async def welcome_text(stack: Stack, userid: str) -> str:
    await stack.sandbox.simulate_add_contact("acme", userid=userid)
    await stack.runtime.drain()
    sent = stack.sandbox.state("acme")["welcome_messages"][-1]
    assert sent["userid"] == userid
    return str(sent["text"])


async def test_welcome_carries_the_guide_name_from_change_contact(book: Stack) -> None:
    assert await guides(book) == {}
    answer = await seed(book, DIRECTORY, deliver=True)
    assert all(d["status"] == 200 for d in answer["deliveries"])
    text = await welcome_text(book, "xiaomei")
    assert "我是湖滨一组的导购林小美" in text
    listed = await guides(book)
    assert listed["xiaomei"]["name"] == "林小美" and listed["xiaomei"]["store"] == "dept21"
    assert listed["qing"]["store"] == "dept23" and listed["qing"]["active"] is True
    assert listed["hq"]["store"] is None  # the corp's root department is no store
    assert await names(book, "xiaomei", "qing") == {"xiaomei": ("林小美", "湖滨一组"),
                                                    "qing": ("王青", "西溪印象城店")}


async def test_sop_texts_carry_the_guide_and_store_names(book: Stack) -> None:
    await seed(book, DIRECTORY, deliver=True)
    status, code = await book.admin("/channels", method="POST", json={"guide": "xiaomei"})
    assert status == 201, code
    await book.sandbox.simulate_add_contact("acme", config_id=code["config_id"])
    await book.runtime.drain()
    welcome = book.calls("externalcontact/send_welcome_msg")[-1]["body"]["text"]["content"]
    assert "我是湖滨一组的导购林小美" in welcome  # the SOP's welcome step, the guide's store
    sop = book.runtime.services.sop
    trigger = datetime.now(UTC)
    sop.clock = lambda: _local_day(trigger, 1, 10, 1).astimezone(UTC)
    await sop.tick("acme")
    sends = book.calls("externalcontact/add_msg_template")
    assert len(sends) == 1 and sends[0]["body"]["sender"] == "xiaomei"
    assert "我是湖滨一组的导购林小美" in sends[0]["body"]["text"]["content"]


async def test_change_contact_renames_and_a_leaver_stays_inactive(book: Stack) -> None:
    await seed(book, DIRECTORY, deliver=True)
    renamed = {"departments": [{"id": 23, "name": "西溪店", "parentid": 20}],
               "members": [{"userid": "qing", "name": "王小青", "department": [23]},
                           {"userid": "ahui", "name": "陈阿辉", "department": [22],
                            "status": 5}],
               "delete_members": ["xiaomei"]}
    await seed(book, renamed, deliver=True)
    listed = await guides(book)
    assert listed["qing"]["name"] == "王小青"
    assert (listed["ahui"]["active"], listed["ahui"]["name"]) == (False, "陈阿辉")
    assert (listed["xiaomei"]["active"], listed["xiaomei"]["name"]) == (False, "林小美")
    assert await names(book, "qing") == {"qing": ("王小青", "西溪店")}
    before = len(book.calls("externalcontact/add_contact_way"))
    status, body = await book.admin("/channels", method="POST", json={"guide": "ahui"})
    assert status == 400 and body["field"] == "guide", body  # a leaver gets no code
    assert "no longer an active member" in body["reason"]
    assert len(book.calls("externalcontact/add_contact_way")) == before
    rows = await book.inbox_rows()
    assert {r.outcome for r in rows} == {"on_directory_changed"}


async def test_sync_at_start_names_guides_before_any_callback(
        book: Stack, aiohttp_server: Any) -> None:
    await seed(book, DIRECTORY, deliver=False)  # change_contact never reached guidebot
    assert await guides(book) == {}
    second = create_app(book.settings, start_jobs=False, backoff=FAST_BACKOFF)
    await aiohttp_server(second)
    await asyncio.gather(*list(second[RUNTIME].background))
    listed = await guides(book)
    assert {u: g["name"] for u, g in listed.items()} == {
        "ahui": "陈阿辉", "hq": "总部运营", "popup": "周快", "qing": "王青",
        "xiaomei": "林小美"}
    assert len(book.calls("user/get")) == 5 and len(book.calls("department/get")) == 4


async def test_first_sight_names_a_guide_whose_read_failed(book: Stack) -> None:
    await fault(book, "user/get", 60011, 1)
    await book.sandbox.simulate_add_contact("acme", userid="newbie")
    await book.runtime.drain()
    await seed(book, {"departments": [{"id": 30, "name": "南京德基店", "parentid": 1}],
                      "members": [{"userid": "newbie", "name": "赵新", "department": [30]}]},
               deliver=False)
    services = book.runtime.services
    # The add read the guide at first sight, and WeCom refused (60011): no name yet.
    assert (await guides(book))["newbie"]["name"] == ""
    await jobs.run_guide_names(services, "acme")
    assert (await guides(book))["newbie"]["name"] == "赵新"
    assert await names(book, "newbie") == {"newbie": ("赵新", "南京德基店")}
    assert "我是南京德基店的导购赵新" in await welcome_text(book, "newbie")
    before = len(book.calls("user/get"))
    await services.directory.ensure_named("acme", "newbie")
    assert len(book.calls("user/get")) == before  # named guides are not read again
    await book.sandbox.simulate_add_contact("acme", userid="nameless")  # not in the book
    await book.runtime.drain()
    await services.directory.ensure_named("acme", "nameless")
    await services.directory.ensure_named("acme", "nameless")
    assert (await guides(book))["nameless"]["name"] == ""
    assert len(book.calls("user/get")) == before + 1  # read once, not on every add


async def test_naming_job_leaves_refused_guides_to_the_daily_sync(book: Stack) -> None:
    for userid in ("a-refused", "b-busy"):  # guides with a channel code, never read yet
        status, _ = await book.admin("/channels", method="POST", json={"guide": userid})
        assert status == 201
    await fault(book, "user/get", 60011, 1)  # a-refused: outside the app's visible range
    await fault(book, "user/get", -1, 3)  # b-busy: WeCom busy on all three tries
    services = book.runtime.services
    assert await services.directory.name_missing("acme") == 0
    reads = len(book.calls("user/get"))
    assert reads == 4
    await seed(book, {"departments": [{"id": 30, "name": "南京德基店", "parentid": 1}],
                      "members": [{"userid": "a-refused", "name": "孙外", "department": [30]},
                                  {"userid": "b-busy", "name": "钱多", "department": [30]}]},
               deliver=False)
    assert await services.directory.name_missing("acme") == 1
    assert [c["query"]["userid"] for c in book.calls("user/get")[reads:]] == ["b-busy"]
    listed = await guides(book)
    assert (listed["b-busy"]["name"], listed["a-refused"]["name"]) == ("钱多", "")


async def test_failed_read_on_change_contact_is_retried_not_dropped(book: Stack) -> None:
    await fault(book, "user/get", 60011, 1)
    await seed(book, {"departments": [{"id": 30, "name": "南京德基店", "parentid": 1}],
                      "members": [{"userid": "newbie", "name": "赵新", "department": [30]}]},
               deliver=True)
    assert (await guides(book))["newbie"]["name"] == "赵新"
    member_rows = [r for r in await book.inbox_rows() if "create_user" in r.payload]
    assert [(r.outcome, r.attempts) for r in member_rows] == [("on_directory_changed", 2)]


async def test_daily_sync_is_due_once_a_day_and_falls_back_to_department_lists(
        book: Stack) -> None:
    await seed(book, DIRECTORY, deliver=False)
    directory = book.runtime.services.directory
    assert await directory.sync_if_due("acme") is None  # the sync at start was just now
    await fault(book, "user/list_id", 48002, 1)
    result = await directory.sync_if_due("acme", now=utcnow() + timedelta(days=1, minutes=1))
    assert result is not None and (result.members, result.failed) == (5, 0)
    assert len(book.calls("user/simplelist")) == 5  # one per department
    assert (await guides(book))["popup"]["name"] == "周快"
    assert await directory.sync_if_due("acme", now=utcnow() + timedelta(hours=23)) is None


async def test_mapping_file_overrides_departments(mapped: Stack) -> None:
    await seed(mapped, DIRECTORY, deliver=False)
    await mapped.runtime.services.directory.sync("acme")
    listed = await guides(mapped)
    assert {u: g["store"] for u, g in listed.items()} == {
        "xiaomei": "HZ01", "ahui": "HZ01", "qing": "dept23", "popup": "HZ02", "hq": None}
    assert await names(mapped, "xiaomei", "ahui", "popup", "qing") == {
        "xiaomei": ("林小美", "杭州湖滨银泰店"), "ahui": ("陈阿辉", "杭州湖滨银泰店"),
        "popup": ("周快", "杭州快闪店"), "qing": ("王青", "西溪印象城店")}
    # a mapped department's new name leaves the store's name as stores.toml has it
    await seed(mapped, {"departments": [{"id": 21, "name": "湖滨A组", "parentid": 20}]},
               deliver=True)
    assert (await names(mapped, "xiaomei"))["xiaomei"] == ("林小美", "杭州湖滨银泰店")


async def test_department_leaders_manage_the_stores_their_departments_make(
        book: Stack) -> None:
    """department/get's department_leader: the managers (店长) of the store a department
    makes, for the mobile workbench; a region's leader (a department no member works in)
    manages no store; a new leader replaces the old on update_party."""
    led = {**DIRECTORY, "departments": [
        {**d, "department_leader": {20: ["boss"], 21: ["xiaomei"], 23: ["zhuren"]}.get(
            d["id"], [])} for d in DIRECTORY["departments"]]}
    await seed(book, led, deliver=False)
    await book.runtime.services.directory.sync("acme")
    workbench, tenant = book.runtime.services.workbench, book.tenant()
    assert (await workbench.member(tenant, "xiaomei")).stores == {"dept21": "湖滨一组"}
    assert (await workbench.member(tenant, "zhuren")).stores == {"dept23": "西溪印象城店"}
    assert (await workbench.member(tenant, "boss")).stores == {}
    assert not (await workbench.member(tenant, "zhuren")).guide
    await seed(book, {"departments": [{"id": 23, "name": "西溪印象城店", "parentid": 20,
                                       "department_leader": ["qing"]}]}, deliver=True)
    assert (await workbench.member(tenant, "zhuren")).stores == {}
    assert (await workbench.member(tenant, "qing")).stores == {"dept23": "西溪印象城店"}


async def test_a_leader_who_left_and_a_deleted_department_lead_nothing(book: Stack) -> None:
    led = {**DIRECTORY, "departments": [
        {**d, "department_leader": {21: ["xiaomei"], 23: ["zhuren"]}.get(d["id"], [])}
        for d in DIRECTORY["departments"]]}
    await seed(book, led, deliver=False)
    await book.runtime.services.directory.sync("acme")
    workbench, tenant = book.runtime.services.workbench, book.tenant()
    assert (await workbench.member(tenant, "zhuren")).stores == {"dept23": "西溪印象城店"}
    assert (await workbench.member(tenant, "xiaomei")).stores == {"dept21": "湖滨一组"}
    await book.sandbox.simulate_event("acme", {"Event": "change_contact",
                                               "ChangeType": "delete_party", "Id": "21"})
    await book.runtime.drain()
    assert (await workbench.member(tenant, "xiaomei")).stores == {}
    await book.sandbox.simulate_event("acme", {"Event": "change_contact",
                                               "ChangeType": "delete_user", "UserID": "zhuren"})
    await book.runtime.drain()
    assert (await workbench.member(tenant, "zhuren")).stores == {}
