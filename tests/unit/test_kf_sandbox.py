"""The sandbox's 微信客服 over HTTP: cursor paging, the callback Token, the 5/48 h send rules,
session transitions with their codes, send_msg_on_event, customers and contact links."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from guidebot.events import KfMsgOrEvent
from guidebot.sandbox import SANDBOX_KEY, Sandbox, create_sandbox_app, kfsim
from guidebot.sandbox.kfstate import TOKEN_TTL_S, WINDOW_S
from guidebot.settings import Settings, load_settings
from guidebot.wecom.parse import parse_event

DATA = Path(__file__).resolve().parents[1] / "data" / "kf"
KFID = "wkTEST0001"
CONFIG = f"""
content_library = "content_library"
[server]
public_url = "http://127.0.0.1:9"
[tenants.acme]
corp_id = "wwacme0001"
agent_id = 1000002
token = "acmeToken1"
encoding_aes_key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
secret = "acme-s"
admin_token = "acme-admin"
[tenants.acme.kf]
open_kfids = ["{KFID}"]
"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "content_library").mkdir()
    (tmp_path / "config.toml").write_text(CONFIG, encoding="utf-8")
    return load_settings(tmp_path / "config.toml")


@pytest.fixture
async def client(aiohttp_client: Any, settings: Settings) -> TestClient:
    return await aiohttp_client(create_sandbox_app(settings, welcome_window_s=20.0))


def sandbox(client: TestClient) -> Sandbox:
    return client.app[SANDBOX_KEY]


async def call(client: TestClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = await (await client.get("/cgi-bin/gettoken", params={
        "corpid": "wwacme0001", "corpsecret": "acme-s"})).json()
    response = await client.post(f"/cgi-bin/{path}", json=body,
                                 params={"access_token": answer["access_token"]})
    return dict(await response.json())


async def writes(client: TestClient, customer: str, text: str) -> dict[str, Any]:
    return await kfsim.kf_message(sandbox(client), "acme", {
        "open_kfid": KFID, "external_userid": customer, "text": text}, deliver=False)


def test_the_doc_callback_parses_with_and_without_open_kfid() -> None:
    xml = (DATA / "kf_msg_or_event.xml").read_text(encoding="utf-8")
    event = parse_event("acme", xml)
    assert isinstance(event, KfMsgOrEvent)
    assert (event.token, event.open_kfid) == (
        "ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR", "wkxxxxxxx")
    bare = parse_event("acme", xml.replace("<OpenKfId><![CDATA[wkxxxxxxx]]></OpenKfId>", ""))
    assert isinstance(bare, KfMsgOrEvent) and bare.open_kfid == ""


def test_open_kfids_must_be_strings(tmp_path: Path) -> None:
    from guidebot.errors import ConfigError

    (tmp_path / "content_library").mkdir()
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.replace(f'["{KFID}"]', "[1]"), encoding="utf-8")
    with pytest.raises(ConfigError, match="tenants.acme.kf.open_kfids"):
        load_settings(path)


async def test_sync_msg_pages_with_cursor_limit_and_has_more(client: TestClient) -> None:
    for n in range(3):
        await writes(client, "wmA", f"m{n}")
    first = await call(client, "kf/sync_msg", {"open_kfid": KFID, "limit": 2})
    assert first["errcode"] == 0 and first["has_more"] == 1
    assert [m["text"]["content"] for m in first["msg_list"]] == ["m0", "m1"]
    assert all(m["origin"] == 3 and m["msgtype"] == "text" for m in first["msg_list"])
    second = await call(client, "kf/sync_msg", {"open_kfid": KFID, "limit": 2,
                                                "cursor": first["next_cursor"]})
    assert [m["text"]["content"] for m in second["msg_list"]] == ["m2"]
    assert second["has_more"] == 0
    again = await call(client, "kf/sync_msg", {"cursor": second["next_cursor"]})
    assert again["msg_list"] == [] and again["has_more"] == 0


async def test_the_callback_token_lives_ten_minutes(client: TestClient) -> None:
    written = await writes(client, "wmA", "hi")
    token = written["delivery"]["token"]
    assert (await call(client, "kf/sync_msg", {"token": token}))["errcode"] == 0
    sandbox(client).advance_clock(TOKEN_TTL_S + 1)
    assert (await call(client, "kf/sync_msg", {"token": token}))["errcode"] == 40058
    assert (await call(client, "kf/sync_msg", {}))["errcode"] == 0


async def test_send_msg_rules_5_messages_48_hours_states(client: TestClient) -> None:
    def text(n: int) -> dict[str, Any]:
        return {"touser": "wmA", "open_kfid": KFID, "msgtype": "text",
                "text": {"content": f"r{n}"}}

    assert (await call(client, "kf/send_msg", text(0)))["errcode"] == 95018  # never wrote
    await writes(client, "wmA", "hi")
    codes = [(await call(client, "kf/send_msg", text(n)))["errcode"] for n in range(6)]
    assert codes == [0, 0, 0, 0, 0, 95001]
    await writes(client, "wmA", "again")  # the customer writes: the count starts over
    assert (await call(client, "kf/send_msg", text(7)))["errcode"] == 0
    sandbox(client).advance_clock(WINDOW_S + 1)
    assert (await call(client, "kf/send_msg", text(8)))["errcode"] == 95002
    await writes(client, "wmA", "back")
    trans = await call(client, "kf/service_state/trans", {
        "open_kfid": KFID, "external_userid": "wmA", "service_state": 3,
        "servicer_userid": "lina"})
    assert trans["errcode"] == 0 and trans["msg_code"]
    assert (await call(client, "kf/send_msg", text(9)))["errcode"] == 95018


async def test_transitions_and_their_codes(client: TestClient) -> None:
    await writes(client, "wmA", "hi")
    pair = {"open_kfid": KFID, "external_userid": "wmA"}
    state = await call(client, "kf/service_state/get", pair)
    assert (state["service_state"], state["servicer_userid"]) == (0, "")
    to_one = await call(client, "kf/service_state/trans", {**pair, "service_state": 1})
    assert to_one["errcode"] == 0 and "msg_code" not in to_one
    back = await call(client, "kf/service_state/trans", {**pair, "service_state": 0})
    assert back["errcode"] == 95016
    kf = sandbox(client).tenants["acme"].kf
    kf.servicers[(KFID, "lina")] = 1  # 停止接待
    stopped = await call(client, "kf/service_state/trans", {
        **pair, "service_state": 3, "servicer_userid": "lina"})
    assert stopped["errcode"] == 95019
    kf.servicers[(KFID, "lina")] = -1  # not a servicer of this account
    assert (await call(client, "kf/service_state/trans", {
        **pair, "service_state": 3, "servicer_userid": "lina"}))["errcode"] == 95014
    pool = await call(client, "kf/service_state/trans", {**pair, "service_state": 2})
    assert pool["errcode"] == 0 and pool["msg_code"]
    notice = await call(client, "kf/send_msg_on_event", {
        "code": pool["msg_code"], "msgtype": "text", "text": {"content": "排队中"}})
    assert notice["errcode"] == 0
    human = await call(client, "kf/service_state/trans", {
        **pair, "service_state": 3, "servicer_userid": "mei"})
    assert human["errcode"] == 0
    # the pool's code belonged to state 2: used, and stale now
    assert (await call(client, "kf/send_msg_on_event", {
        "code": pool["msg_code"], "msgtype": "text", "text": {"content": "x"}}))["errcode"] \
        == 40058
    ended = await call(client, "kf/service_state/trans", {**pair, "service_state": 4})
    assert ended["errcode"] == 0 and ended["msg_code"]
    assert (await call(client, "kf/service_state/trans",
                       {**pair, "service_state": 3, "servicer_userid": "mei"}))["errcode"] \
        == 95016
    await writes(client, "wmA", "hello again")  # a new message: 4 → 0
    assert (await call(client, "kf/service_state/get", pair))["service_state"] == 0


async def test_welcome_code_once_within_20_seconds(client: TestClient) -> None:
    entered = await kfsim.kf_enter(sandbox(client), "acme", {
        "open_kfid": KFID, "external_userid": "wmB", "scene_param": "tok"}, deliver=False)
    code = entered["welcome_code"]
    synced = await call(client, "kf/sync_msg", {"open_kfid": KFID})
    [item] = synced["msg_list"]
    assert item["origin"] == 4 and item["event"]["event_type"] == "enter_session"
    assert item["event"]["scene_param"] == "tok" and item["event"]["welcome_code"] == code
    body = {"code": code, "msgtype": "text", "text": {"content": "欢迎"}}
    assert (await call(client, "kf/send_msg_on_event", body))["errcode"] == 0
    assert (await call(client, "kf/send_msg_on_event", body))["errcode"] == 40058
    late = await kfsim.kf_enter(sandbox(client), "acme", {
        "open_kfid": KFID, "external_userid": "wmC"}, deliver=False)
    sandbox(client).advance_clock(21)
    assert (await call(client, "kf/send_msg_on_event", {
        **body, "code": late["welcome_code"]}))["errcode"] == 40058
    # a customer welcomed within 48 h gets no new welcome_code
    again = await kfsim.kf_enter(sandbox(client), "acme", {
        "open_kfid": KFID, "external_userid": "wmB"}, deliver=False)
    assert again["welcome_code"] == ""


async def test_customers_and_contact_links(client: TestClient) -> None:
    await kfsim.kf_message(sandbox(client), "acme", {
        "open_kfid": KFID, "external_userid": "wmA", "text": "hi",
        "unionid": "oUNION1"}, deliver=False)
    found = await call(client, "kf/customer/batchget", {
        "external_userid_list": ["wmA", "wmNobody"]})
    assert [c["unionid"] for c in found["customer_list"]] == ["oUNION1"]
    assert found["invalid_external_userid"] == ["wmNobody"]
    way = await call(client, "kf/add_contact_way", {"open_kfid": KFID, "scene": "guide"})
    assert way["errcode"] == 0 and "enc_scene=" in way["url"]
    bad = await call(client, "kf/add_contact_way", {"open_kfid": KFID, "scene": "含中文"})
    assert bad["errcode"] == 40058
    unknown = await call(client, "kf/add_contact_way", {"open_kfid": "wkNONE", "scene": "g"})
    assert unknown["errcode"] == 40058


async def test_account_list_shows_the_configured_accounts(client: TestClient) -> None:
    await kfsim.kf_message(sandbox(client), "acme", {
        "open_kfid": "wkOTHER", "external_userid": "wmA", "text": "hi"}, deliver=False)
    listed = await call(client, "kf/account/list", {"offset": 0, "limit": 100})
    assert [(a["open_kfid"], a["manage_privilege"]) for a in listed["account_list"]] == [
        ("wkOTHER", False), (KFID, True)]
