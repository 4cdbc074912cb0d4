"""客户继承 in the sandbox over HTTP: on-job and resigned transfers, their 24-hour wait on the
sandbox clock, the per-customer errcodes, refusals and the unassigned list."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.unit.test_sandbox import (
    call,
    control,
    get_token,
    sandbox_of,
    sandbox_with_directory,
    start_receiver,
)

DAY = 86400
TRANSFER = "externalcontact/transfer_customer"
RESULT = "externalcontact/transfer_result"
RESIGNED_TRANSFER = "externalcontact/resigned/transfer_customer"
RESIGNED_RESULT = "externalcontact/resigned/transfer_result"
UNASSIGNED = "externalcontact/get_unassigned_list"
DIRECTORY = {
    "departments": [{"id": 1, "name": "acme", "parentid": 0}],
    "members": [{"userid": "ahui", "name": "阿辉", "department": [1]},
                {"userid": "xiaomei", "name": "小美", "department": [1]},
                {"userid": "ading", "name": "阿丁", "department": [1]},
                {"userid": "leaver", "name": "离职", "department": [1]},
                {"userid": "away", "name": "停用", "department": [1], "status": 2}],
    "deliver": False,
}


@pytest.fixture
async def sandbox(aiohttp_client: Any, tmp_path: Path) -> TestClient:
    return await sandbox_with_directory(aiohttp_client, tmp_path, DIRECTORY)


async def api(client: TestClient, path: str, body: Any = None, **query: str) -> dict[str, Any]:
    """A call with the live token (the clock moves by days here; tokens last two hours)."""
    return await call(client, path, await get_token(client), body, **query)


async def seed(client: TestClient, userid: str, *customers: str) -> None:
    follows = [{"userid": userid, "external_userid": c} for c in customers]
    status, answer = await control(client, "acme/seed", {"follows": follows})
    assert status == 200, answer


async def transfer(client: TestClient, handover: str, takeover: str,
                   *customers: str, path: str = TRANSFER) -> dict[str, Any]:
    return await api(client, path, {"handover_userid": handover,
                                            "takeover_userid": takeover,
                                            "external_userid": list(customers)})


async def codes(client: TestClient, handover: str, takeover: str,
                *customers: str, path: str = TRANSFER) -> list[int]:
    answer = await transfer(client, handover, takeover, *customers, path=path)
    assert answer["errcode"] == 0, answer
    return [c["errcode"] for c in answer["customer"]]


async def result(client: TestClient, handover: str, takeover: str,
                 path: str = RESULT, cursor: str = "") -> dict[str, Any]:
    return await api(client, path, {"handover_userid": handover,
                                            "takeover_userid": takeover, "cursor": cursor})


async def advance(client: TestClient, seconds: int) -> list[dict[str, Any]]:
    status, answer = await control(client, "clock", {"seconds": seconds})
    assert status == 200, answer
    return list(answer["deliveries"]["acme"])


async def followers(client: TestClient, customer: str) -> list[tuple[str, int]]:
    got = await api(client, "externalcontact/get", external_userid=customer)
    return [(f["userid"], f["add_way"]) for f in got["follow_user"]]


async def test_an_on_job_transfer_waits_24_hours_then_moves_the_customer(
        aiohttp_server: Any, sandbox: TestClient) -> None:
    receiver = await start_receiver(aiohttp_server, sandbox)
    await seed(sandbox, "ahui", "wmA", "wmB", "wmKeep")
    before = int(sandbox_of(sandbox).now())
    answer = await transfer(sandbox, "ahui", "xiaomei", "wmA", "wmB")
    after = int(sandbox_of(sandbox).now())
    assert answer == {"errcode": 0, "errmsg": "ok", "customer": [
        {"external_userid": "wmA", "errcode": 0}, {"external_userid": "wmB", "errcode": 0}]}
    waiting = await result(sandbox, "ahui", "xiaomei")
    assert [(c["external_userid"], c["status"]) for c in waiting["customer"]] == [
        ("wmA", 2), ("wmB", 2)]
    due = waiting["customer"][0]["takeover_time"]
    assert before + DAY <= due <= after + DAY and waiting["next_cursor"] == ""
    assert await advance(sandbox, DAY - 3600) == []  # 23 hours: still waiting
    assert await followers(sandbox, "wmA") == [("ahui", 0)]
    deliveries = await advance(sandbox, 3600)
    assert [d["status"] for d in deliveries] == [200, 200]
    assert [(e["ChangeType"], e["UserID"], e["ExternalUserID"], e["Source"], e["CreateTime"])
            for e in receiver.events] == [
        ("del_external_contact", "ahui", "wmA", "DELETE_BY_TRANSFER", str(due)),
        ("del_external_contact", "ahui", "wmB", "DELETE_BY_TRANSFER", str(due))]
    done = await result(sandbox, "ahui", "xiaomei")
    assert [(c["status"], c["takeover_time"]) for c in done["customer"]] == [(1, due)] * 2
    assert await followers(sandbox, "wmA") == [("xiaomei", 202)]
    listed = await api(sandbox, "externalcontact/list", userid="ahui")
    assert listed["external_userid"] == ["wmKeep"]
    batch = await api(sandbox, "externalcontact/batch/get_by_user",
                      {"userid_list": ["xiaomei"]})
    assert [i["external_contact"]["external_userid"] for i in batch["external_contact_list"]] \
        == ["wmA", "wmB"]
    assert await advance(sandbox, DAY) == []  # settled once
    _, state = await control(sandbox, "acme/state", method="GET")
    assert [t["status"] for t in state["transfers"]["transfers"]] == [1, 1]


async def test_a_transfer_call_settles_what_the_python_clock_made_due(
        aiohttp_server: Any, sandbox: TestClient) -> None:
    receiver = await start_receiver(aiohttp_server, sandbox)
    await seed(sandbox, "ahui", "wmA")
    assert await codes(sandbox, "ahui", "xiaomei", "wmA") == [0]
    sandbox_of(sandbox).advance_clock(DAY + 1)
    assert receiver.events == []  # nothing settles until the next transfer call
    done = await result(sandbox, "ahui", "xiaomei")
    assert [c["status"] for c in done["customer"]] == [1]
    assert [(e["ChangeType"], e["Source"]) for e in receiver.events] == [
        ("del_external_contact", "DELETE_BY_TRANSFER")]
    status, settled = await control(sandbox, "acme/transfers/settle", {})
    assert (status, settled) == (200, {"deliveries": []})


async def test_per_customer_errcodes(sandbox: TestClient) -> None:
    await seed(sandbox, "ahui", "wmA", "wmBusy", "wmShared", "wmFull")
    await seed(sandbox, "xiaomei", "wmShared")
    assert await codes(sandbox, "ahui", "xiaomei", "wmBusy", "wmShared") == [0, 0]
    assert await codes(sandbox, "ahui", "ading", "wmBusy", "nobody", "wmX") == [
        40129, 40096, 40096]
    await seed(sandbox, "ading", "wmX")
    assert await codes(sandbox, "ahui", "ading", "wmX") == [40131]
    # another follower of a customer who is waiting to be transferred
    assert await codes(sandbox, "xiaomei", "ading", "wmShared") == [40100]
    status, _ = await control(sandbox, "acme/transfers/limit", {"userid": "ading"})
    assert status == 200
    assert await codes(sandbox, "ahui", "ading", "wmFull", "wmA") == [40099, 40099]
    await control(sandbox, "acme/transfers/limit", {"userid": "ading", "full": False})
    assert await codes(sandbox, "ahui", "ading", "wmFull") == [0]


async def test_a_customer_moves_at_most_twice_in_90_days(sandbox: TestClient) -> None:
    await seed(sandbox, "ahui", "wmA")
    assert await codes(sandbox, "ahui", "xiaomei", "wmA") == [0]
    await advance(sandbox, DAY)
    assert await codes(sandbox, "xiaomei", "ahui", "wmA") == [0]
    await advance(sandbox, DAY)
    assert await codes(sandbox, "ahui", "ading", "wmA") == [40128]
    await advance(sandbox, 88 * DAY + 1)  # 90 days after the first transfer started
    assert await codes(sandbox, "ahui", "ading", "wmA") == [0]


async def test_requests_wrong_as_a_whole(sandbox: TestClient) -> None:
    await seed(sandbox, "ahui", "wmA")
    assert (await transfer(sandbox, "ahui", "ahui", "wmA"))["errcode"] == 40130
    assert (await transfer(sandbox, "ahui", "away", "wmA"))["errcode"] == 40098
    await control(sandbox, "acme/directory", {"delete_members": ["ading"], "deliver": False})
    assert (await transfer(sandbox, "ahui", "ading", "wmA"))["errcode"] == 40098
    too_many = [f"wm{i}" for i in range(101)]
    assert (await transfer(sandbox, "ahui", "xiaomei", *too_many))["errcode"] == 40058
    assert (await transfer(sandbox, "ahui", "xiaomei"))["errcode"] == 40058
    body = {"handover_userid": "ahui", "takeover_userid": "xiaomei", "external_userid": ["wmA"],
            "transfer_success_msg": "好" * 201}
    assert (await api(sandbox, TRANSFER, body))["errcode"] == 40058
    body["transfer_success_msg"] = "好" * 200
    assert (await api(sandbox, TRANSFER, body))["customer"][0]["errcode"] == 0
    active = await transfer(sandbox, "ahui", "xiaomei", "wmA", path=RESIGNED_TRANSFER)
    assert active["errcode"] == 40097


async def test_a_resigned_members_customers_are_listed_until_transferred(
        aiohttp_server: Any, sandbox: TestClient) -> None:
    receiver = await start_receiver(aiohttp_server, sandbox)
    await seed(sandbox, "leaver", "wm1", "wm2")
    await seed(sandbox, "ading", "wm3")
    assert (await api(sandbox, UNASSIGNED, {}))["info"] == []
    resigned_at = int(sandbox_of(sandbox).now())
    leaving = {**DIRECTORY["members"][3], "status": 5}  # type: ignore[index]
    await control(sandbox, "acme/directory", {"members": [leaving], "deliver": False})
    await control(sandbox, "acme/directory", {"delete_members": ["ading"], "deliver": False})
    pages, cursor = [], ""
    while True:
        page = await api(sandbox, UNASSIGNED, {"page_size": 1, "cursor": cursor})
        pages.append(page)
        cursor = page["next_cursor"]
        if page["is_last"]:
            break
    assert [[(i["handover_userid"], i["external_userid"]) for i in p["info"]]
            for p in pages] == [[("ading", "wm3")], [("leaver", "wm1")], [("leaver", "wm2")]]
    assert [p["is_last"] for p in pages] == [False, False, True]
    assert resigned_at <= pages[1]["info"][0]["dimission_time"] <= resigned_at + 1
    by_page_id = await api(sandbox, UNASSIGNED, {"page_id": 1, "page_size": 2})
    assert [i["external_userid"] for i in by_page_id["info"]] == ["wm2"]
    assert await codes(sandbox, "leaver", "xiaomei", "wm1",
                       path=RESIGNED_TRANSFER) == [0]
    left = await api(sandbox, UNASSIGNED, {})
    assert [i["external_userid"] for i in left["info"]] == ["wm3", "wm2"]
    assert left["is_last"] is True
    assert (await result(sandbox, "leaver", "xiaomei"))["customer"] == []  # on-job only
    await advance(sandbox, DAY)
    done = await result(sandbox, "leaver", "xiaomei", RESIGNED_RESULT)
    assert [(c["external_userid"], c["status"]) for c in done["customer"]] == [("wm1", 1)]
    assert await followers(sandbox, "wm1") == [("xiaomei", 202)]
    assert receiver.events == []  # no callback for a resigned member's customers
    left = await api(sandbox, UNASSIGNED, {})
    assert [i["external_userid"] for i in left["info"]] == ["wm3", "wm2"]


async def test_a_customer_refuses_and_the_handover_keeps_them(
        aiohttp_server: Any, sandbox: TestClient) -> None:
    receiver = await start_receiver(aiohttp_server, sandbox)
    await seed(sandbox, "ahui", "wmA", "wmB")
    assert await codes(sandbox, "ahui", "xiaomei", "wmA", "wmB") == [0, 0]
    refusal = {"external_userid": "wmA", "takeover_userid": "xiaomei",
               "reason": "customer_refused"}
    status, answer = await control(sandbox, "acme/simulate/transfer_refused", refusal)
    assert status == 200 and answer["delivery"]["status"] == 200
    [event] = receiver.events
    assert event | {"order": None, "CreateTime": None} == {
        "tenant": "acme", "order": None, "ToUserName": "wwacme0001", "FromUserName": "sys",
        "CreateTime": None, "MsgType": "event", "Event": "change_external_contact",
        "ChangeType": "transfer_fail", "FailReason": "customer_refused", "UserID": "xiaomei",
        "ExternalUserID": "wmA"}
    status, answer = await control(sandbox, "acme/simulate/transfer_refused", refusal)
    assert status == 404
    limit = {**refusal, "external_userid": "wmB", "reason": "customer_limit_exceed"}
    assert (await control(sandbox, "acme/simulate/transfer_refused", limit))[0] == 200
    assert (await control(sandbox, "acme/simulate/transfer_refused",
                          {**refusal, "reason": "bored"}))[0] == 400
    await advance(sandbox, DAY)
    failed = await result(sandbox, "ahui", "xiaomei")
    assert [(c["status"], c["takeover_time"]) for c in failed["customer"]] == [(3, 0), (4, 0)]
    assert await followers(sandbox, "wmA") == [("ahui", 0)]
    assert [e["ChangeType"] for e in receiver.events] == ["transfer_fail"] * 2


async def test_transfer_result_pages_by_1000(sandbox: TestClient) -> None:
    customers = [f"wm{i:04}" for i in range(1001)]
    await seed(sandbox, "ahui", *customers)
    for start in range(0, len(customers), 100):
        assert set(await codes(sandbox, "ahui", "xiaomei",
                               *customers[start:start + 100])) == {0}
    first = await result(sandbox, "ahui", "xiaomei")
    assert len(first["customer"]) == 1000 and first["next_cursor"]
    second = await result(sandbox, "ahui", "xiaomei", cursor=first["next_cursor"])
    assert [c["external_userid"] for c in second["customer"]] == ["wm1000"]
    assert second["next_cursor"] == ""
