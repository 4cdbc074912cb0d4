"""The WeCom sandbox over real HTTP: tokens, faults, limits, welcome codes, callbacks."""

from __future__ import annotations

import asyncio
import socket
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData, web
from aiohttp.test_utils import TestClient, TestServer
from wechatpy.enterprise import WeChatClient
from wechatpy.enterprise.crypto import WeChatCrypto

from guidebot.sandbox import SANDBOX_KEY, Sandbox, create_sandbox_app, serve
from guidebot.settings import Settings, load_settings

DATA = Path(__file__).parent.parent / "data" / "sandbox"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
ACME: dict[str, Any] = {
    "corp_id": "wwacme0001", "agent_id": 1000002, "token": "acmeToken1", "secret": "acme-s"}
TINY: dict[str, Any] = {
    "corp_id": "wwtiny0001", "agent_id": 1000005, "token": "tinyToken1", "secret": "tiny-s"}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64

CONFIG = f"""
content_library = "content_library"
[server]
public_url = "http://127.0.0.1:9"
[tenants.acme]
corp_id = "{ACME["corp_id"]}"
agent_id = {ACME["agent_id"]}
token = "{ACME["token"]}"
encoding_aes_key = "{AES_KEY}"
secret = "{ACME["secret"]}"
admin_token = "acme-admin"
[tenants.tiny]
corp_id = "{TINY["corp_id"]}"
agent_id = {TINY["agent_id"]}
token = "{TINY["token"]}"
encoding_aes_key = "{AES_KEY}"
secret = "{TINY["secret"]}"
admin_token = "tiny-admin"
[tenants.tiny.quotas]
api_calls_per_min = 3
"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "content_library").mkdir()
    (tmp_path / "config.toml").write_text(CONFIG, encoding="utf-8")
    return load_settings(tmp_path / "config.toml")


@pytest.fixture
async def client(aiohttp_client: Any, settings: Settings) -> TestClient:
    return await aiohttp_client(create_sandbox_app(settings))


def sandbox_of(client: TestClient) -> Sandbox:
    return client.app[SANDBOX_KEY]


async def get_token(client: TestClient, app: dict[str, Any] = ACME) -> str:
    query = {"corpid": app["corp_id"], "corpsecret": app["secret"]}
    answer = await (await client.get("/cgi-bin/gettoken", params=query)).json()
    assert answer["errcode"] == 0, answer
    return str(answer["access_token"])


async def call(
    client: TestClient, path: str, token: str | None, body: Any = None, **query: str
) -> dict[str, Any]:
    params = {**query, **({"access_token": token} if token else {})}
    if body is None:
        response = await client.get(f"/cgi-bin/{path}", params=params)
    else:
        response = await client.post(f"/cgi-bin/{path}", params=params, json=body)
    assert response.status == 200
    return dict(await response.json())


async def control(client: TestClient, path: str, body: Any = None, method: str = "POST") -> Any:
    response = await client.request(method, f"/_sandbox/{path}", json=body)
    return response.status, await response.json()


class Receiver:
    """A stand-in bot: decrypts each callback like the real webhook would."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.events: list[dict[str, Any]] = []
        self.envelopes: list[ET.Element] = []
        self.plaintexts: list[str] = []  # the decrypted XML, nested elements and all

    async def handle(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        app = ACME if tenant == "acme" else TINY
        crypto = WeChatCrypto(app["token"], AES_KEY, app["corp_id"])
        body, q = await request.text(), request.query
        plain = crypto.decrypt_message(body, q["msg_signature"], q["timestamp"], q["nonce"])
        self.envelopes.append(ET.fromstring(body))
        self.plaintexts.append(plain)
        root = ET.fromstring(plain)
        self.events.append({"tenant": tenant, "order": [e.tag for e in root],
                            **{e.tag: e.text for e in root}})
        return web.Response(status=self.status, text="")


async def sandbox_with_directory(aiohttp_client: Any, tmp_path: Path,
                                 directory: dict[str, Any]) -> TestClient:
    """A sandbox app whose acme address book is set to `directory` (no callbacks)."""
    (tmp_path / "content_library").mkdir()
    (tmp_path / "config.toml").write_text(CONFIG, encoding="utf-8")
    client = await aiohttp_client(create_sandbox_app(load_settings(tmp_path / "config.toml")))
    status, answer = await control(client, "acme/directory", {**directory, "deliver": False})
    assert status == 200, answer
    return client


async def start_receiver(aiohttp_server: Any, client: TestClient, status: int = 200) -> Receiver:
    receiver = Receiver(status)
    app = web.Application()
    app.router.add_post("/wecom/{tenant}/callback", receiver.handle)
    server: TestServer = await aiohttp_server(app)
    sandbox_of(client).set_callback_base(str(server.make_url("")))
    return receiver


async def test_gettoken_repeats_the_live_token_and_checks_credentials(client: TestClient) -> None:
    first, second = await get_token(client), await get_token(client)
    assert first == second and len(first) >= 32
    assert await get_token(client, TINY) != first
    wrong_secret = {"corpid": ACME["corp_id"], "corpsecret": "nope"}
    answer = await (await client.get("/cgi-bin/gettoken", params=wrong_secret)).json()
    assert answer["errcode"] == 40001
    wrong_corp = {"corpid": "wwother", "corpsecret": ACME["secret"]}
    answer = await (await client.get("/cgi-bin/gettoken", params=wrong_corp)).json()
    assert answer["errcode"] == 40013
    answer = await (await client.get("/cgi-bin/gettoken", params={
        "corpid": ACME["corp_id"], "corpsecret": ACME["secret"]})).json()
    assert answer["expires_in"] > 7100


async def test_token_missing_unknown_revoked_and_expired(client: TestClient) -> None:
    path = "externalcontact/get_follow_user_list"
    assert (await call(client, path, None))["errcode"] == 41001
    assert (await call(client, path, "bogus"))["errcode"] == 40014
    old = await get_token(client)
    assert (await call(client, path, old))["errcode"] == 0
    status, answer = await control(client, "acme/revoke_token")
    assert (status, answer) == (200, {"revoked": True})
    assert (await call(client, path, old))["errcode"] == 42001
    new = await get_token(client)
    assert new != old
    assert (await call(client, path, new))["errcode"] == 0
    sandbox_of(client).advance_clock(7201)
    assert (await call(client, path, new))["errcode"] == 42001
    assert await get_token(client) != new


async def test_faults_answer_the_errcode_the_given_number_of_times(client: TestClient) -> None:
    token = await get_token(client)
    path = "externalcontact/get_follow_user_list"
    status, _ = await control(client, "faults", {"tenant": "acme", "path": path,
                                                 "errcode": -1, "times": 2})
    assert status == 200
    codes = [(await call(client, path, token))["errcode"] for _ in range(3)]
    assert codes == [-1, -1, 0]
    await control(client, "faults", {"path": "/cgi-bin/gettoken", "errcode": 45009, "times": -1})
    for _ in range(2):
        answer = await (await client.get("/cgi-bin/gettoken", params={
            "corpid": ACME["corp_id"], "corpsecret": ACME["secret"]})).json()
        assert answer["errcode"] == 45009
    status, _ = await control(client, "faults", method="DELETE")
    assert status == 200
    assert await get_token(client) == token
    status, answer = await control(client, "faults", {"path": path, "errcode": 0})
    assert status == 400 and "errcode" in answer["error"]


async def test_a_slow_fault_answers_after_its_delay_once_or_with_its_errcode(
        client: TestClient) -> None:
    """A slow WeCom: `delay_s` holds the answer back (errcode 0: answered normally)."""
    token = await get_token(client)
    path = "externalcontact/get_follow_user_list"
    status, body = await control(client, "faults", {"tenant": "acme", "path": path,
                                                    "delay_s": 0.5})
    assert status == 200 and body["fault"] == {"tenant": "acme", "path": path, "errcode": 0,
                                               "times": 1, "delay_s": 0.5,
                                               "http_status": 0}
    slow = asyncio.create_task(call(client, path, token))
    await asyncio.sleep(0.05)
    assert not slow.done()  # held back (it cannot be answered early: not a timing bound)
    assert (await slow)["errcode"] == 0
    status, listed = await control(client, "faults", method="GET")
    assert listed == {"faults": []}  # used up
    await control(client, "faults", {"path": path, "delay_s": 0.2, "errcode": 45009})
    assert [(await call(client, path, token))["errcode"] for _ in range(2)] == [45009, 0]
    for wrong, says in (({"path": path, "errcode": 0}, "errcode"),
                        ({"path": path, "delay_s": 61}, "delay_s must be a number from 0 to 60"),
                        ({"path": path, "delay_s": "1"}, "delay_s"),
                        ({"path": path, "delay_s": -1, "errcode": 45009}, "delay_s")):
        status, answer = await control(client, "faults", wrong)
        assert status == 400 and says in answer["error"], (wrong, answer)


async def test_a_gateway_fault_answers_a_bare_http_status_the_given_number_of_times(
        client: TestClient) -> None:
    """WeCom unreachable: the call gets the status and no API answer; then WeCom answers."""
    token = await get_token(client)
    path = "externalcontact/get_follow_user_list"
    status, _ = await control(client, "faults", {"tenant": "acme", "path": path,
                                                 "http_status": 502, "times": 2})
    assert status == 200
    url = f"/cgi-bin/{path}"
    for _ in range(2):
        resp = await client.get(url, params={"access_token": token})
        assert resp.status == 502 and "errcode" not in await resp.text()
    assert (await call(client, path, token))["errcode"] == 0
    for wrong, says in (({"path": path, "http_status": 404}, "http_status"),
                        ({"path": path, "http_status": "502"}, "http_status"),
                        ({"path": path, "http_status": 502, "errcode": -1}, "not both")):
        status, answer = await control(client, "faults", wrong)
        assert status == 400 and says in answer["error"], (wrong, answer)


async def test_api_calls_over_the_minute_quota_answer_45009(client: TestClient) -> None:
    token = await get_token(client, TINY)  # gettoken is call 1 of 3 on its own path
    path = "externalcontact/get_follow_user_list"
    codes = [(await call(client, path, token))["errcode"] for _ in range(4)]
    assert codes == [0, 0, 0, 45009]
    assert (await call(client, "externalcontact/get_corp_tag_list", token, {}))["errcode"] == 0
    message = {"touser": "g1", "msgtype": "text", "agentid": TINY["agent_id"],
               "text": {"content": "hi"}}
    sends = [(await call(client, "message/send", token, message))["errcode"] for _ in range(5)]
    assert sends == [0] * 5  # app messages are not metered by the API frequency limit
    sandbox_of(client).advance_clock(61)
    assert (await call(client, path, token))["errcode"] == 0


async def test_welcome_code_works_once(client: TestClient) -> None:
    added = await sandbox_of(client).simulate_add_contact("acme", userid="guide1", deliver=False)
    token = await get_token(client)
    body = {"welcome_code": added["welcome_code"], "text": {"content": "欢迎光临"}}
    assert (await call(client, "externalcontact/send_welcome_msg", token, body))["errcode"] == 0
    again = await call(client, "externalcontact/send_welcome_msg", token, body)
    assert again["errcode"] == 41051
    unknown = {**body, "welcome_code": "never-issued"}
    assert (await call(client, "externalcontact/send_welcome_msg", token, unknown))["errcode"] \
        == 41051
    _, state = await control(client, "acme/state", method="GET")
    sent = state["welcome_messages"]
    assert [(w["external_userid"], w["userid"], w["text"]) for w in sent] == [
        (added["external_userid"], "guide1", "欢迎光临")]


async def test_welcome_code_expires_after_the_window(aiohttp_client: Any,
                                                     settings: Settings) -> None:
    client = await aiohttp_client(create_sandbox_app(settings, welcome_window_s=0.2))
    sandbox = sandbox_of(client)
    token = await get_token(client)
    late = await sandbox.simulate_add_contact("acme", userid="guide1", deliver=False)
    prompt = await sandbox.simulate_add_contact("acme", userid="guide1", deliver=False)
    body = {"welcome_code": prompt["welcome_code"], "text": {"content": "hi"}}
    assert (await call(client, "externalcontact/send_welcome_msg", token, body))["errcode"] == 0
    await asyncio.sleep(0.3)
    body = {"welcome_code": late["welcome_code"], "text": {"content": "hi"}}
    assert (await call(client, "externalcontact/send_welcome_msg", token, body))["errcode"] \
        == 41051


async def test_contact_way_limits_state_and_attributes_adds(client: TestClient) -> None:
    token = await get_token(client)
    way = {"type": 1, "scene": 2, "user": ["guide7"], "state": "g" * 31}
    assert (await call(client, "externalcontact/add_contact_way", token, way))["errcode"] == 40058
    way["state"] = "g7c" + "x" * 27
    made = await call(client, "externalcontact/add_contact_way", token, way)
    assert made["errcode"] == 0 and made["qr_code"]
    two_users = {**way, "user": ["a1", "a2"]}
    assert (await call(client, "externalcontact/add_contact_way", token, two_users))["errcode"] \
        == 40058
    got = await call(client, "externalcontact/get_contact_way", token,
                     {"config_id": made["config_id"]})
    assert got["contact_way"]["state"] == way["state"]
    status, added = await control(client, "acme/simulate/add_contact",
                                  {"config_id": made["config_id"], "deliver": False})
    assert status == 200
    assert (added["userid"], added["state"]) == ("guide7", way["state"])
    assert added["external_userid"].startswith("wm")
    customer = await call(client, "externalcontact/get", token,
                          external_userid=added["external_userid"])
    assert [(f["userid"], f["state"]) for f in customer["follow_user"]] == [
        ("guide7", way["state"])]
    assert customer["external_contact"]["name"]


async def test_tags_and_mark_tag(aiohttp_server: Any, client: TestClient) -> None:
    receiver = await start_receiver(aiohttp_server, client)
    token = await get_token(client)
    group = {"group_name": "兴趣", "tag": [{"name": "护肤"}, {"name": "彩妆"}]}
    made = await call(client, "externalcontact/add_corp_tag", token, group)
    tag_ids = [t["id"] for t in made["tag_group"]["tag"]]
    assert len(set(tag_ids)) == 2
    dup = {"group_id": made["tag_group"]["group_id"], "tag": [{"name": "护肤"}]}
    assert (await call(client, "externalcontact/add_corp_tag", token, dup))["errcode"] == 40071
    long_name = {"group_name": "兴趣", "tag": [{"name": "长" * 31}]}
    assert (await call(client, "externalcontact/add_corp_tag", token, long_name))["errcode"] \
        == 40058
    added = await sandbox_of(client).simulate_add_contact("acme", userid="guide1")
    customer = added["external_userid"]
    mark = {"userid": "guide2", "external_userid": customer, "add_tag": tag_ids[:1]}
    assert (await call(client, "externalcontact/mark_tag", token, mark))["errcode"] == 84061
    mark["userid"] = "guide1"
    bad = {**mark, "add_tag": ["etnope"]}
    assert (await call(client, "externalcontact/mark_tag", token, bad))["errcode"] == 40068
    empty = {**mark, "add_tag": []}
    assert (await call(client, "externalcontact/mark_tag", token, empty))["errcode"] == 40058
    assert (await call(client, "externalcontact/mark_tag", token, mark))["errcode"] == 0
    got = await call(client, "externalcontact/get", token, external_userid=customer)
    assert [t["tag_name"] for t in got["follow_user"][0]["tags"]] == ["护肤"]
    assert [e["ChangeType"] for e in receiver.events] == ["add_external_contact"]


async def test_corp_tag_list_filters_and_console_tags_raise_callbacks(
    aiohttp_server: Any, client: TestClient
) -> None:
    receiver = await start_receiver(aiohttp_server, client)
    status, made = await control(client, "acme/tags", {"group_name": "会员",
                                                       "tag": [{"name": "金卡"}]})
    assert status == 200
    assert [(e["Event"], e["TagType"]) for e in receiver.events] == [
        ("change_external_tag", "tag_group"), ("change_external_tag", "tag")]
    token = await get_token(client)
    other = await call(client, "externalcontact/add_corp_tag", token,
                       {"group_name": "渠道", "tag": [{"name": "门店"}]})
    assert len(receiver.events) == 2  # API-made tags raise no callback
    everything = await call(client, "externalcontact/get_corp_tag_list", token, {})
    assert {g["group_name"] for g in everything["tag_group"]} == {"会员", "渠道"}
    by_tag = await call(client, "externalcontact/get_corp_tag_list", token,
                        {"tag_id": [made["tag_group"]["tag"][0]["id"]]})
    assert [g["group_name"] for g in by_tag["tag_group"]] == ["会员"]
    by_group = await call(client, "externalcontact/get_corp_tag_list", token, {
        "tag_id": [made["tag_group"]["tag"][0]["id"]],
        "group_id": [other["tag_group"]["group_id"]]})
    assert [g["group_name"] for g in by_group["tag_group"]] == ["渠道"]


async def test_app_messages_over_the_per_guide_quota_are_dropped(client: TestClient) -> None:
    token = await get_token(client)
    message = {"touser": "guide1|bad user", "msgtype": "text", "agentid": ACME["agent_id"],
               "text": {"content": "任务提醒"}}
    answers = [await call(client, "message/send", token, message) for _ in range(31)]
    assert {a["errcode"] for a in answers} == {0}
    assert answers[0]["invaliduser"] == "bad user"
    _, state = await control(client, "acme/state", method="GET")
    dropped = [m["dropped"] for m in state["app_messages"] if m["userid"] == "guide1"]
    assert dropped == [False] * 30 + [True]
    other = {**message, "touser": "guide2"}
    await call(client, "message/send", token, other)
    _, state = await control(client, "acme/state", method="GET")
    assert state["app_messages"][-1] | {"at": None} == {
        "msgid": state["app_messages"][-1]["msgid"], "userid": "guide2", "msgtype": "text",
        "content": {"content": "任务提醒"}, "at": None, "dropped": False}


async def test_app_message_validation(client: TestClient) -> None:
    token = await get_token(client)
    base = {"touser": "guide1", "agentid": ACME["agent_id"]}
    card = {**base, "msgtype": "textcard",
            "textcard": {"title": "t" * 129, "description": "d", "url": "https://x"}}
    assert (await call(client, "message/send", token, card))["errcode"] == 45002
    wrong_agent = {**base, "agentid": 1, "msgtype": "text", "text": {"content": "x"}}
    assert (await call(client, "message/send", token, wrong_agent))["errcode"] == 40056
    unknown = {**base, "msgtype": "voice_call", "voice_call": {}}
    assert (await call(client, "message/send", token, unknown))["errcode"] == 40008
    news = {**base, "msgtype": "news", "news": {"articles": [{"title": "a"}] * 9}}
    assert (await call(client, "message/send", token, news))["errcode"] == 40058
    long_text = {**base, "msgtype": "text", "text": {"content": "字" * 1000}}
    assert (await call(client, "message/send", token, long_text))["errcode"] == 0
    _, state = await control(client, "acme/state", method="GET")
    assert len(state["app_messages"][-1]["content"]["content"].encode()) == 2046


async def test_calls_log_masks_tokens_and_filters(client: TestClient) -> None:
    token = await get_token(client)
    await call(client, "externalcontact/get_corp_tag_list", token, {"tag_id": []})
    await get_token(client, TINY)
    status, answer = await control(client, "calls?tenant=acme", method="GET")
    assert status == 200
    paths = [c["path"] for c in answer["calls"]]
    assert paths == ["gettoken", "externalcontact/get_corp_tag_list"]
    listed = answer["calls"][1]
    assert listed["query"] == {"access_token": "***"}
    assert listed["body"] == {"tag_id": []}
    assert listed["at"].endswith("Z") and listed["errcode"] == 0
    assert answer["calls"][0]["query"]["corpsecret"] == "***"
    _, by_path = await control(client, "calls?path=gettoken", method="GET")
    assert [c["tenant"] for c in by_path["calls"]] == ["acme", "tiny"]
    await control(client, "calls", method="DELETE")
    _, empty = await control(client, "calls", method="GET")
    assert empty == {"calls": []}
    assert sandbox_of(client).calls() == []


async def test_simulate_add_contact_delivers_an_encrypted_callback(
    aiohttp_server: Any, client: TestClient
) -> None:
    receiver = await start_receiver(aiohttp_server, client)
    status, added = await control(client, "acme/simulate/add_contact", {
        "userid": "guide1", "state": "g1c2", "name": "王静", "create_time": 1700000000})
    assert status == 200
    assert added["delivery"] == {"status": 200, "error": None, "attempts": 1}
    [event] = receiver.events
    sample = ET.parse(DATA / "change_external_contact.add_external_contact.xml").getroot()
    assert event["order"] == [e.tag for e in sample]
    assert event | {"order": None} == {
        "tenant": "acme", "order": None, "ToUserName": ACME["corp_id"], "FromUserName": "sys",
        "CreateTime": "1700000000", "MsgType": "event", "Event": "change_external_contact",
        "ChangeType": "add_external_contact", "UserID": "guide1",
        "ExternalUserID": added["external_userid"], "State": "g1c2",
        "WelcomeCode": added["welcome_code"]}
    [envelope] = receiver.envelopes
    assert envelope.findtext("ToUserName") == ACME["corp_id"]
    assert envelope.findtext("AgentID") == str(ACME["agent_id"])
    token = await get_token(client)
    customer = added["external_userid"]
    got = await call(client, "externalcontact/get", token, external_userid=customer)
    assert got["external_contact"]["name"] == "王静"
    assert got["follow_user"][0]["createtime"] == 1700000000


async def test_failed_delivery_is_retried_like_wecom(aiohttp_server: Any,
                                                     client: TestClient) -> None:
    receiver = await start_receiver(aiohttp_server, client, status=500)
    added = await sandbox_of(client).simulate_add_contact("acme", userid="guide1")
    assert added["delivery"] == {"status": 500, "error": "HTTP 500", "attempts": 3}
    assert len(receiver.events) == 3
    sandbox_of(client).set_callback_base("http://127.0.0.1:9")  # nothing listens there
    added = await sandbox_of(client).simulate_add_contact("acme", userid="guide1")
    assert added["delivery"]["status"] is None and added["delivery"]["error"]


async def test_simulated_deletions_update_relations(aiohttp_server: Any,
                                                    client: TestClient) -> None:
    receiver = await start_receiver(aiohttp_server, client)
    sandbox = sandbox_of(client)
    one = await sandbox.simulate_add_contact("acme", userid="guide1", deliver=False)
    two = await sandbox.simulate_add_contact("acme", userid="guide1", deliver=False)
    answer = await sandbox.simulate_event("acme", {
        "Event": "change_external_contact", "ChangeType": "del_follow_user",
        "UserID": "guide1", "ExternalUserID": one["external_userid"]})
    assert answer["delivery"]["status"] == 200
    assert "<ChangeType><![CDATA[del_follow_user]]></ChangeType>" in answer["xml"]
    status, answer = await control(client, "acme/simulate/event", {"fields": {
        "Event": "change_external_contact", "ChangeType": "del_external_contact",
        "UserID": "guide1", "ExternalUserID": two["external_userid"], "CreateTime": 1}})
    assert status == 200 and receiver.events[-1]["CreateTime"] == "1"
    state = sandbox.state("acme")
    assert [(f["external_userid"], f["customer_deleted"]) for f in state["follows"]] == [
        (one["external_userid"], True)]
    token = await get_token(client)
    await call(client, "externalcontact/add_corp_tag", token,
               {"group_name": "g", "tag": [{"name": "t"}]})
    tag_id = sandbox.state("acme")["tag_groups"][0]["tag"][0]["id"]
    for customer, errcode in ((one, 0), (two, 84061)):
        mark = {"userid": "guide1", "external_userid": customer["external_userid"],
                "add_tag": [tag_id]}
        assert (await call(client, "externalcontact/mark_tag", token, mark))["errcode"] == errcode
    status, answer = await control(client, "acme/simulate/event", {"fields": {"bad name": 1}})
    assert status == 400


async def test_group_message_lifecycle(client: TestClient) -> None:
    sandbox = sandbox_of(client)
    mine = await sandbox.simulate_add_contact("acme", userid="guide1", deliver=False)
    theirs = await sandbox.simulate_add_contact("acme", userid="guide2", deliver=False)
    token = await get_token(client)
    body = {"external_userid": [mine["external_userid"], theirs["external_userid"]],
            "sender": "guide1", "text": {"content": "上新啦"}}
    made = await call(client, "externalcontact/add_msg_template", token, body)
    assert made["errcode"] == 0 and made["fail_list"] == [theirs["external_userid"]]
    msgid = made["msgid"]
    result_query = {"msgid": msgid, "userid": "guide1"}
    sent = await call(client, "externalcontact/get_groupmsg_send_result", token, result_query)
    assert [(s["external_userid"], s["status"]) for s in sent["send_list"]] == [
        (mine["external_userid"], 0)]
    status, _ = await control(client, "acme/confirm_groupmsg", result_query)
    assert status == 200
    tasks = await call(client, "externalcontact/get_groupmsg_task", token, {"msgid": msgid})
    assert [(t["userid"], t["status"]) for t in tasks["task_list"]] == [("guide1", 1)]
    sent = await call(client, "externalcontact/get_groupmsg_send_result", token, result_query)
    assert [s["status"] for s in sent["send_list"]] == [1]
    listed = await call(client, "externalcontact/get_groupmsg_list_v2", token, {
        "chat_type": "single", "start_time": 0, "end_time": 2**31 - 1})
    assert [m["msgid"] for m in listed["group_msg_list"]] == [msgid]
    second = await call(client, "externalcontact/add_msg_template", token, body)
    await control(client, "acme/confirm_groupmsg", {"msgid": second["msgid"], "userid": "guide1"})
    sent = await call(client, "externalcontact/get_groupmsg_send_result", token,
                      {"msgid": second["msgid"], "userid": "guide1"})
    assert [s["status"] for s in sent["send_list"]] == [3]  # quota "1/day" already used
    status, _ = await control(client, "acme/confirm_groupmsg", {"msgid": "nope", "userid": "x"})
    assert status == 404
    unmatched = {**body, "tag_filter": {"group_list": [{"tag_list": ["etnobody"]}]}}
    filtered = await call(client, "externalcontact/add_msg_template", token, unmatched)
    tasks = await call(client, "externalcontact/get_groupmsg_task", token,
                       {"msgid": filtered["msgid"]})
    assert (tasks["errcode"], tasks["task_list"]) == (0, [])


async def test_media_upload_and_attachment_checks(client: TestClient) -> None:
    token = await get_token(client)

    async def upload(kind: str, data: bytes) -> dict[str, Any]:
        form = FormData()
        form.add_field("media", data, filename="poster.png", content_type="image/png")
        response = await client.post("/cgi-bin/media/upload",
                                     params={"access_token": token, "type": kind}, data=form)
        return dict(await response.json())

    uploaded = await upload("image", PNG)
    assert uploaded["errcode"] == 0 and uploaded["type"] == "image"
    assert isinstance(uploaded["created_at"], str) and uploaded["created_at"].isdigit()
    assert (await upload("sticker", PNG))["errcode"] == 40004
    assert (await upload("image", b"\x89PNG"))["errcode"] == 40006
    assert (await upload("image", b"GIF89a" + b"\x00" * 20))["errcode"] == 40005
    added = await sandbox_of(client).simulate_add_contact("acme", userid="guide1", deliver=False)
    image: dict[str, Any] = {"msgtype": "image", "image": {"media_id": "not-ours"}}
    body = {"welcome_code": added["welcome_code"], "attachments": [image]}
    assert (await call(client, "externalcontact/send_welcome_msg", token, body))["errcode"] \
        == 40007
    image["image"]["media_id"] = uploaded["media_id"]
    body["attachments"] = [image] * 10
    assert (await call(client, "externalcontact/send_welcome_msg", token, body))["errcode"] \
        == 41064
    body["attachments"] = [{"msgtype": "sticker", "sticker": {}}]
    assert (await call(client, "externalcontact/send_welcome_msg", token, body))["errcode"] \
        == 41065
    body["attachments"] = [image]
    assert (await call(client, "externalcontact/send_welcome_msg", token, body))["errcode"] == 0


MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64


async def test_video_attachments_name_a_video_upload(client: TestClient) -> None:
    """Welcomes, 群发 tasks and moments take a video attachment whose media id was uploaded
    as type=video; a moment carries 9 images, or 1 video, or 1 link, never two kinds."""
    token = await get_token(client)

    async def upload(kind: str, data: bytes) -> str:
        form = FormData()
        form.add_field("media", data, filename=f"a.{kind}", content_type="application/x")
        response = await client.post("/cgi-bin/media/upload",
                                     params={"access_token": token, "type": kind}, data=form)
        answer = await response.json()
        assert answer["errcode"] == 0, answer
        return str(answer["media_id"])

    form = FormData()
    form.add_field("media", PNG, filename="a.mp4", content_type="video/mp4")
    refused = await (await client.post("/cgi-bin/media/upload", data=form, params={
        "access_token": token, "type": "video"})).json()
    assert refused["errcode"] == 40005  # not an MP4
    video, image = await upload("video", MP4), await upload("image", PNG)
    as_video = {"msgtype": "video", "video": {"media_id": video}}
    added = await sandbox_of(client).simulate_add_contact("acme", userid="guide1", deliver=False)
    body = {"welcome_code": added["welcome_code"],
            "attachments": [{"msgtype": "video", "video": {"media_id": image}}]}
    assert (await call(client, "externalcontact/send_welcome_msg", token, body))["errcode"] \
        == 41065
    body["attachments"] = [as_video]
    assert (await call(client, "externalcontact/send_welcome_msg", token, body))["errcode"] == 0
    assert sandbox_of(client).tenants["acme"].welcomes_sent[-1].attachments == [as_video]
    template = {"chat_type": "single", "sender": "guide1",
                "external_userid": [added["external_userid"]], "attachments": [as_video]}
    assert (await call(client, "externalcontact/add_msg_template", token, template))[
        "errcode"] == 0

    moment: dict[str, Any] = {"visible_range": {"sender_list": {"user_list": ["guide1"]}},
                              "attachments": [as_video]}
    assert (await call(client, "externalcontact/add_moment_task", token, moment))["errcode"] == 0
    as_image = {"msgtype": "image", "image": {"media_id": image}}
    for wrong, code in (([as_video, as_video], 41065), ([as_video, as_image], 41065),
                        ([as_image] * 10, 41065),
                        ([{"msgtype": "video", "video": {"media_id": "not-ours"}}], 40007)):
        moment["attachments"] = wrong
        answer = await call(client, "externalcontact/add_moment_task", token, moment)
        assert answer["errcode"] == code, (wrong, answer)


async def test_bad_json_and_unknown_paths(client: TestClient) -> None:
    token = await get_token(client)
    response = await client.post("/cgi-bin/externalcontact/mark_tag",
                                 params={"access_token": token}, data=b"{not json")
    assert (response.status, (await response.json())["errcode"]) == (200, 47001)
    response = await client.get("/cgi-bin/externalcontact/no_such_api",
                                params={"access_token": token})
    assert response.status == 404 and (await response.json())["errcode"] == 404
    status, answer = await control(client, "nobody/state", method="GET")
    assert status == 404 and "nobody" in answer["error"]


async def test_customer_lists_and_batch_paging(client: TestClient) -> None:
    sandbox = sandbox_of(client)
    added = [await sandbox.simulate_add_contact("acme", userid="guide1", deliver=False)
             for _ in range(3)]
    token = await get_token(client)
    listed = await call(client, "externalcontact/list", token, userid="guide1")
    assert listed["external_userid"] == [a["external_userid"] for a in added]
    assert (await call(client, "externalcontact/list", token, userid="guide9"))["errcode"] == 84061
    first = await call(client, "externalcontact/batch/get_by_user", token,
                       {"userid_list": ["guide1"], "limit": 2})
    second = await call(client, "externalcontact/batch/get_by_user", token,
                        {"userid_list": ["guide1"], "limit": 2, "cursor": first["next_cursor"]})
    pages = first["external_contact_list"] + second["external_contact_list"]
    assert [p["external_contact"]["external_userid"] for p in pages] == [
        a["external_userid"] for a in added]
    assert second["next_cursor"] == "" and pages[0]["follow_info"]["tag_id"] == []
    too_many = {"userid_list": [f"u{i}" for i in range(101)]}
    assert (await call(client, "externalcontact/batch/get_by_user", token, too_many))["errcode"] \
        == 40058
    follow = await call(client, "externalcontact/get_follow_user_list", token)
    assert follow["follow_user"] == ["guide1", "guide9"]
    assert (await call(client, "externalcontact/get", token, external_userid="wmnope"))[
        "errcode"] == 40096


async def test_wechatpy_client_talks_to_the_sandbox(client: TestClient) -> None:
    added = await sandbox_of(client).simulate_add_contact("acme", userid="guide1", name="李娜",
                                                          deliver=False)
    base = str(client.make_url("/cgi-bin/"))

    class SandboxClient(WeChatClient):  # type: ignore[misc]
        API_BASE_URL = base

        def fetch_access_token(self) -> Any:
            return self._fetch_access_token(
                url=self.API_BASE_URL + "gettoken",
                params={"corpid": self.corp_id, "corpsecret": self.secret})

    wechat = SandboxClient(ACME["corp_id"], ACME["secret"], auto_retry=False)
    got = await asyncio.to_thread(wechat.external_contact.get, added["external_userid"])
    assert got["external_contact"]["name"] == "李娜"
    assert sandbox_of(client).calls(path="externalcontact/get")[0]["errcode"] == 0


async def test_serve_runs_until_cancelled(settings: Settings) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    task = asyncio.create_task(serve(settings, "127.0.0.1", port))
    for _ in range(50):
        await asyncio.sleep(0.02)
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            continue
        writer.close()
        break
    else:
        pytest.fail("the sandbox never listened")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
