"""A customer adds a guide through a channel code: link, binding, tags, welcome — over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from guidebot.cli import main
from guidebot.db.repo import outbox as outbox_repo
from guidebot.db.types import utcnow
from tests.support.metrics import scrape as _scrape
from tests.support.metrics import value as _value
from tests.support.stack import ROOT, Stack, library_copy, start_stack, write_config
from tests.support.wecom import add_contact_xml

WELCOME_COUNT = "guidebot_welcome_latency_seconds_count"


async def _channel(stack: Stack, guide: str, **extra: object) -> dict:
    status, body = await stack.admin("/channels", method="POST",
                                     json={"guide": guide, **extra})
    assert status == 201, body
    return body


async def test_channel_code_add_links_tags_and_welcomes(stack: Stack) -> None:
    code = await _channel(stack, "lina", store="S01", campaign="double11",
                          tags=["门店扫码", "双11活动"], welcome_message="welcome_double11")
    assert code["state"].startswith("gb") and len(code["state"]) <= 30
    added = await stack.sandbox.simulate_add_contact("acme", config_id=code["config_id"],
                                                     name="张晓雨")
    assert added["delivery"]["status"] == 200
    await stack.runtime.drain()

    status, view = await stack.admin(f"/customers/{added['external_userid']}")
    assert status == 200
    assert view["name"] == "张晓雨"
    assert [(g["userid"], g["status"], g["state"]) for g in view["guides"]] == [
        ("lina", "active", code["state"])]
    assert view["exclusive_guide"] == "lina"
    assert sorted(view["tags"]) == ["双11活动", "门店扫码"]
    assert view["channel"] == {"store": "S01", "guide": "lina", "campaign": "double11"}

    welcomes = stack.calls("externalcontact/send_welcome_msg")
    assert len(welcomes) == 1
    body = welcomes[0]["body"]
    assert body["welcome_code"] == added["welcome_code"]
    assert "张晓雨" in body["text"]["content"] and "双11" in body["text"]["content"]
    marks = stack.calls("externalcontact/mark_tag")
    assert len(marks) == 1 and marks[0]["body"]["userid"] == "lina"

    async with stack.runtime.services.db.read() as s:  # retried by the welcome's executor
        item = await outbox_repo.get_by_key(s, tenant="acme",
                                            key=f"welcome:{added['welcome_code']}")
    assert item is not None and (item.kind, item.status) == ("welcome", "done")
    # the welcome sent is timed (from the add's CreateTime)
    assert _value(await _scrape(stack), WELCOME_COUNT, tenant="acme") == 1


async def test_same_callback_three_times_is_processed_once(stack: Stack) -> None:
    xml = add_contact_xml(corp_id=stack.tenant().corp_id, guide="wangfang",
                          external_userid="wmDUPLICATE0001", welcome_code="WC-DUP-1")
    statuses = [await stack.post_callback(xml) for _ in range(3)]
    assert statuses == [200, 200, 200]
    await stack.runtime.drain()
    rows = await stack.inbox_rows()
    assert len(rows) == 1 and rows[0].processed_at is not None
    assert len(stack.calls("externalcontact/send_welcome_msg")) == 1


async def test_fifty_same_second_adds_from_sys_make_fifty_links(stack: Stack) -> None:
    now = int(time.time())
    xmls = [add_contact_xml(corp_id=stack.tenant().corp_id, guide=f"guide{i % 4}",
                            external_userid=f"wmSAMESECOND{i:04d}", welcome_code=f"WC{i}",
                            create_time=now) for i in range(50)]
    statuses = await asyncio.gather(*(stack.post_callback(x) for x in xmls))
    assert statuses == [200] * 50
    await stack.runtime.drain()
    seen = set()
    for i in range(50):
        status, view = await stack.admin(f"/customers/wmSAMESECOND{i:04d}")
        assert status == 200, view
        assert view["guides"][0]["userid"] == f"guide{i % 4}"
        seen.add(view["external_userid"])
    assert len(seen) == 50
    assert len(await stack.inbox_rows()) == 50


async def test_profile_failure_still_links_and_fills_in_later(stack: Stack) -> None:
    # The welcome's read of the name fails, and so does the add's follow-up fetch.
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/faults", json={
            "tenant": "acme", "path": "externalcontact/get", "errcode": 60011,
            "times": 2}) as resp:
        assert resp.status == 200
    added = await stack.sandbox.simulate_add_contact("acme", userid="zhaolei", name="周婷")
    await stack.runtime.drain()
    status, view = await stack.admin(f"/customers/{added['external_userid']}")
    assert status == 200
    assert view["guides"][0]["userid"] == "zhaolei"
    assert view["name"] == "" and view["profile_fetched"] is False
    welcomes = stack.calls("externalcontact/send_welcome_msg")
    assert len(welcomes) == 1 and welcomes[0]["body"]["text"]["content"].startswith("您好")
    filled = await stack.runtime.services.profiles.fill_missing("acme")
    assert filled == 1
    _, view = await stack.admin(f"/customers/{added['external_userid']}")
    assert view["name"] == "周婷"


async def test_profile_read_for_the_welcome_is_stored_without_a_second_fetch(
        stack: Stack) -> None:
    added = await stack.sandbox.simulate_add_contact("acme", userid="zhaolei", name="周婷")
    await stack.runtime.drain()
    welcome = stack.calls("externalcontact/send_welcome_msg")[0]["body"]["text"]["content"]
    assert welcome.startswith("周婷，您好")
    assert len(stack.calls("externalcontact/get")) == 1
    _, view = await stack.admin(f"/customers/{added['external_userid']}")
    assert view["name"] == "周婷" and view["profile_fetched"] is True


async def test_unknown_event_is_recorded_not_crashing(stack: Stack) -> None:
    xml = ("<xml><ToUserName>x</ToUserName><FromUserName>sys</FromUserName>"
           "<CreateTime>1700000000</CreateTime><MsgType>event</MsgType>"
           "<Event>brand_new_event</Event><Foo>bar</Foo></xml>")
    assert await stack.post_callback(xml) == 200
    await stack.runtime.drain()
    rows = await stack.inbox_rows()
    assert len(rows) == 1
    assert rows[0].outcome == "unhandled" and rows[0].processed_at is not None
    assert json.loads(json.dumps(rows[0].payload)) == xml


async def test_welcome_is_never_sent_after_the_20_second_window(stack: Stack) -> None:
    late = int(time.time()) - 25  # e.g. processed late after a crash or a burst
    xml = add_contact_xml(corp_id=stack.tenant().corp_id, guide="lina",
                          external_userid="wmLATE0001", welcome_code="WC-LATE",
                          create_time=late)
    assert await stack.post_callback(xml) == 200
    await stack.runtime.drain()
    assert stack.calls("externalcontact/send_welcome_msg") == []
    status, view = await stack.admin("/customers/wmLATE0001")
    assert status == 200 and view["guides"][0]["userid"] == "lina"

    async with stack.runtime.services.db.read() as s:
        item = await outbox_repo.get_by_key(s, tenant="acme", key="welcome:WC-LATE")
    assert item is not None and item.status == "expired" and item.attempts == 1
    # a welcome that never went is not timed
    assert _value(await _scrape(stack), WELCOME_COUNT, tenant="acme") is None


@pytest.fixture
async def no_welcome_stack(aiohttp_server: Any, tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    """A library with no default welcome and no SOP welcome step."""
    nurture = (ROOT / "content_library/sops/new_customer_nurture.toml").read_text("utf-8")
    assert "\nenabled = true\n" in nurture
    library = library_copy(tmp_path, {"sops/new_customer_nurture.toml": nurture.replace(
        "\nenabled = true\n", "\nenabled = false\n")})
    (library / "messages" / "welcome_default.toml").unlink()
    s = await start_stack(aiohttp_server, tmp_path, db_url, library=library)
    yield s
    await s.http.close()


async def test_an_add_with_no_welcome_configured_links_and_says_so(
        no_welcome_stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    stack = no_welcome_stack
    caplog.set_level(logging.INFO, logger="guidebot.contacts.welcome")
    added = await stack.sandbox.simulate_add_contact("acme", userid="lina", name="周婷")
    await stack.runtime.drain()
    assert stack.calls("externalcontact/send_welcome_msg") == []
    assert "no welcome message configured tenant=acme" in caplog.messages
    status, view = await stack.admin(f"/customers/{added['external_userid']}")
    assert status == 200 and view["guides"][0]["userid"] == "lina"


async def test_a_welcome_a_stopped_process_was_sending_is_sent_by_the_next(
        stack: Stack) -> None:
    """A process stopped mid-welcome leaves its outbox row `sending`; once its lease has run
    out, another process's retries send it with the welcome's own executor, inside the
    add's window."""
    added = await stack.sandbox.simulate_add_contact("acme", userid="lina", deliver=False)
    code = added["welcome_code"]
    now = utcnow()
    payload = json.dumps({"welcome_code": code, "text": {"content": "您好"}})
    async with stack.runtime.services.db.write() as s:
        await outbox_repo.insert_if_new(
            s, tenant="acme", key=f"welcome:{code}", kind="welcome", payload=payload,
            due_at=now, deadline_at=now + timedelta(seconds=15), lease_owner="1:stopped",
            lease_until=now - timedelta(seconds=1))
    services = stack.runtime.services
    assert await services.outbox.retry_due(services.calls) == 1
    [welcome] = stack.calls("externalcontact/send_welcome_msg")
    assert (welcome["errcode"], welcome["body"]) == (0, json.loads(payload))
    async with services.db.read() as s:
        item = await outbox_repo.get_by_key(s, tenant="acme", key=f"welcome:{code}")
    assert item is not None and item.status == "done"


async def test_a_slow_profile_read_does_not_hold_the_welcome_past_its_window(
        stack: Stack) -> None:
    """WeCom answering externalcontact/get after the welcome's 20 s: the welcome waits a few
    seconds for the customer's name, then goes without it, inside its window."""
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/faults", json={
            "tenant": "acme", "path": "externalcontact/get", "delay_s": 21}) as resp:
        assert resp.status == 200, await resp.text()
    added = await stack.sandbox.simulate_add_contact("acme", userid="zhaolei", name="周婷")
    await stack.runtime.drain()
    [welcome] = stack.calls("externalcontact/send_welcome_msg")
    assert welcome["errcode"] == 0 and welcome["body"]["welcome_code"] == added["welcome_code"]
    assert welcome["body"]["text"]["content"].startswith("您好")  # no name


async def test_an_acquisition_link_channel_is_attributed_like_a_qr_code(
        stack: Stack, tmp_path: Path, db_url: str) -> None:
    """获客助手: the link's url carries the code's state as customer_channel; the customer
    adding through it comes back with that State and is linked, tagged and welcomed."""
    code = await _channel(stack, "lina", store="S01", campaign="douyin",
                          tags=["门店扫码"], kind="link")
    assert code["kind"] == "link" and code["config_id"]
    (created,) = stack.calls("externalcontact/customer_acquisition/create_link")
    assert created["body"]["range"] == {"user_list": ["lina"]}
    assert code["qr_code"].endswith(f"customer_channel={code['state']}")
    added = await stack.sandbox.simulate_acquisition_add("acme", code["qr_code"], name="林一")
    assert added["delivery"]["status"] == 200
    await stack.runtime.drain()
    status, view = await stack.admin(f"/customers/{added['external_userid']}")
    assert view["channel"] == {"store": "S01", "guide": "lina", "campaign": "douyin"}
    assert view["tags"] == ["门店扫码"] and view["exclusive_guide"] == "lina"
    assert len(stack.calls("externalcontact/send_welcome_msg")) == 1
    status, listed = await stack.admin("/channels")
    assert [c["kind"] for c in listed["channels"]] == ["link"]

    folder = tmp_path / "cli"
    folder.mkdir()
    config = write_config(folder, db_url,  # the same database and sandbox as the stack
                          acme=f'api_base = "{stack.sandbox_url}/cgi-bin/"')
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert await asyncio.to_thread(main, ["--config", str(config), "channel", "create",
                                              "--tenant", "acme", "--guide", "mia",
                                              "--link"]) == 0
    printed = json.loads(out.getvalue())
    assert printed["kind"] == "link" and "customer_channel=" in printed["qr_code"]
