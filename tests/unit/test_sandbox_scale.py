"""The sandbox at scale and as a client: bulk seeding, indexed 群发, a guide editing tags in the
WeCom client, moment jobs that take a few polls."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from guidebot.sandbox import create_sandbox_app
from guidebot.settings import Settings
from tests.unit.test_sandbox import call, control, get_token, sandbox_of, start_receiver
from tests.unit.test_sandbox import settings as settings  # noqa: F401,PLC0414 - the fixture


@pytest.fixture
async def sandbox_client(aiohttp_client: Any, settings: Settings) -> TestClient:  # noqa: F811
    return await aiohttp_client(create_sandbox_app(settings))


def _follows(guides: int, start: int, count: int) -> list[dict[str, str]]:
    return [{"userid": f"guide{i % guides}", "external_userid": f"wmSEED{i:07d}"}
            for i in range(start, start + count)]


async def test_seed_creates_relations_in_chunks_without_callbacks(
        aiohttp_server: Any, sandbox_client: TestClient) -> None:
    client = sandbox_client
    receiver = await start_receiver(aiohttp_server, client)
    for start in (0, 50_000):
        status, answer = await control(client, "acme/seed",
                                       {"follows": _follows(10, start, 50_000)})
        assert status == 200, answer
        assert answer == {"customers": 50_000, "follows": 50_000, "members": 10}
    again = [{"userid": "guide1", "external_userid": "wmSEED0000001", "name": "林静"},
             {"userid": "guide2", "external_userid": "wmSEED0000001"}]
    status, answer = await control(client, "acme/seed", {"follows": again})
    assert answer == {"customers": 0, "follows": 1, "members": 10}  # one new relation only
    assert receiver.events == []  # an existing base: WeCom raised nothing for it
    token = await get_token(client)
    got = await call(client, "externalcontact/get", token, external_userid="wmSEED0000001")
    assert sorted(f["userid"] for f in got["follow_user"]) == ["guide1", "guide2"]
    assert got["external_contact"]["name"]  # a generated name (the given one came too late)
    listed = await call(client, "externalcontact/list", token, userid="guide7")
    assert len(listed["external_userid"]) == 10_000

    # 群发 to 10,000 of one guide's customers among 100,000 relations: found by index
    customers = [f"wmSEED{i:07d}" for i in range(3, 100_000, 10)][:9_998]
    wanted = [*customers, "wmSEED0000004", "wmNOBODY"]
    made = await call(client, "externalcontact/add_msg_template", token, {
        "sender": "guide3", "external_userid": wanted, "text": {"content": "上新"}})
    assert made["errcode"] == 0
    assert made["fail_list"] == ["wmSEED0000004", "wmNOBODY"]
    status, _ = await control(client, "acme/confirm_groupmsg",
                              {"msgid": made["msgid"], "userid": "guide3"})
    assert status == 200
    sent, cursor = [], ""
    while True:
        page = await call(client, "externalcontact/get_groupmsg_send_result", token,
                          {"msgid": made["msgid"], "userid": "guide3", "limit": 1000,
                           "cursor": cursor})
        sent += page["send_list"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(s["external_userid"] for s in sent) == sorted(customers)
    assert {s["status"] for s in sent} == {1}


async def test_seed_rejects_a_bad_chunk_whole(sandbox_client: TestClient) -> None:
    client = sandbox_client
    good = _follows(2, 0, 3)
    for bad, problem in (
            ({"userid": "bad user", "external_userid": "wm1"}, "follows[3].userid"),
            ({"userid": "g1", "external_userid": ""}, "follows[3].external_userid"),
            ({"userid": "g1", "external_userid": "wm1", "tags": []}, "unknown key(s) tags"),
            ("wm1", "follows[3] must be an object")):
        status, answer = await control(client, "acme/seed", {"follows": [*good, bad]})
        assert status == 400 and problem in answer["error"]
    assert (await control(client, "acme/seed", {"follows": []}))[0] == 400
    assert (await control(client, "nope/seed", {"follows": good}))[0] == 404
    assert sandbox_of(client).state("acme")["follows"] == []  # nothing half-applied


async def test_a_guide_editing_tags_in_the_client_raises_edit_external_contact(
        aiohttp_server: Any, sandbox_client: TestClient) -> None:
    client = sandbox_client
    receiver = await start_receiver(aiohttp_server, client)
    status, made = await control(client, "acme/tags", {"group_name": "客户状态", "tag": [
        {"name": "沉睡客"}, {"name": "复购客"}]}, )
    assert status == 200
    sleepy, loyal = (t["id"] for t in made["tag_group"]["tag"])
    added = await sandbox_of(client).simulate_add_contact("acme", userid="guide1",
                                                          deliver=False)
    customer = added["external_userid"]
    receiver.events.clear()
    status, answer = await control(client, "acme/simulate/edit_tags", {
        "userid": "guide1", "external_userid": customer, "add": ["沉睡客", loyal]})
    assert status == 200 and answer["tag_ids"] == [sleepy, loyal]
    assert answer["delivery"]["status"] == 200
    [event] = receiver.events
    assert {k: event[k] for k in ("Event", "ChangeType", "UserID", "ExternalUserID")} == {
        "Event": "change_external_contact", "ChangeType": "edit_external_contact",
        "UserID": "guide1", "ExternalUserID": customer}
    assert "Tag" not in "".join(event["order"])  # FACTS §2: no tag detail in the event
    status, answer = await control(client, "acme/simulate/edit_tags", {
        "userid": "guide1", "external_userid": customer, "remove": ["沉睡客"],
        "deliver": False})
    assert answer["tag_ids"] == [loyal] and len(receiver.events) == 1
    token = await get_token(client)
    got = await call(client, "externalcontact/get", token, external_userid=customer)
    assert [t["tag_name"] for t in got["follow_user"][0]["tags"]] == ["复购客"]
    for body, expected in (
            ({"userid": "guide2", "external_userid": customer, "add": ["复购客"]}, 404),
            ({"userid": "guide1", "external_userid": customer, "add": ["无此标签"]}, 400),
            ({"userid": "guide1", "external_userid": customer}, 400)):
        assert (await control(client, "acme/simulate/edit_tags", body))[0] == expected


async def test_moment_jobs_can_take_a_few_polls(sandbox_client: TestClient) -> None:
    client = sandbox_client
    token = await get_token(client)
    body = {"text": {"content": "新品上市"},
            "visible_range": {"sender_list": {"user_list": ["guide1", "bad user"]}}}
    done = await call(client, "externalcontact/add_moment_task", token, body)
    answer = await call(client, "externalcontact/get_moment_task_result", token,
                        jobid=done["jobid"])
    assert answer["status"] == 3 and answer["result"]["moment_id"]
    assert answer["result"]["invalid_sender_list"]["user_list"] == ["bad user"]
    status, _ = await control(client, "acme/moment_job_polls", {"polls": 2})
    assert status == 200
    slow = await call(client, "externalcontact/add_moment_task", token, body)
    statuses = [(await call(client, "externalcontact/get_moment_task_result", token,
                            jobid=slow["jobid"])) for _ in range(3)]
    assert [s["status"] for s in statuses] == [1, 2, 3]
    assert "result" not in statuses[0] and statuses[2]["result"]["errcode"] == 0
    assert (await control(client, "acme/moment_job_polls", {"polls": -1}))[0] == 400


def test_relations_stay_indexed_both_ways_through_adds_and_drops() -> None:
    from guidebot.sandbox.models import Follow
    from guidebot.sandbox.relations import Relations

    relations = Relations()
    for userid in ("g1", "g2", "g3"):
        relations.put(Follow(userid, "wmA", 1))
    relations.put(Follow("g1", "wmB", 1))
    relations.put(Follow("g1", "wmA", 2))  # a replacement, not a new relation
    assert len(relations) == 4 and relations[("g1", "wmA")].createtime == 2
    assert [f.userid for f in relations.of_customer("wmA")] == ["g1", "g2", "g3"]
    assert relations.drop("g2", "wmA") is not None and relations.drop("g2", "wmA") is None
    assert [f.userid for f in relations.of_customer("wmA")] == ["g1", "g3"]
    relations.drop("g1", "wmA")
    relations.drop("g3", "wmA")
    assert relations.of_customer("wmA") == [] and ("g1", "wmA") not in relations
    assert [f.external_userid for f in relations.of_member("g1")] == ["wmB"]
    assert [f.external_userid for f in relations.values()] == ["wmB"] and len(relations) == 1
