"""Sessions WeCom hands to a servicer by itself, the bot's cards on the handoff page and an
unknown session_status_change, over HTTP with real encrypted kf callbacks through the
sandbox.

- WeCom's own routing queues a customer in the pool (the sandbox's simulate/kf_queue: no
  handoff by guidebot) and a servicer takes the session (change_type 1): intake records the
  event as a handoff of route "wecom", so the servicer's reminder links to a handoff page
  that opens for them (200), for nobody else and for no other tenant; 接待时效 follows it.
- The bot's product card sent before a handoff shows on the handoff page as the customer saw
  it (the console's card partial), with no customer text in the logs.
- A change_type the facts do not have (4) is recorded and logged by id, and changes nothing.

Every clock is set (the sandbox's and the reply-time service's); nothing depends on the time
of day."""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from guidebot.db.repo import contacts as contacts_repo
from tests.support.console import Console
from tests.support.kf import (
    KFID,
    card_stack,
    control,
    customer_writes,
    kf_rows,
    kf_state,
    session,
    use_router,
)
from tests.support.sidebar import sign_in
from tests.support.stack import Stack

T0 = datetime(2030, 3, 4, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai; after any real cursor
DAY = T0.astimezone(ZoneInfo("Asia/Shanghai")).date()


def at(stack: Stack, minutes: float) -> datetime:
    """The sandbox clock at T0 + minutes (a fifth of a second in) and the reply-time
    service's clock there too."""
    when = T0 + timedelta(minutes=minutes)
    stack.sandbox.clock_offset = when.timestamp() + 0.2 - time.time()
    stack.runtime.services.reply_times.clock = lambda: when
    return when


async def _session_change(stack: Stack, customer: str, change_type: int,
                          new_servicer: str = "", **extra: Any) -> Any:
    result = await control(stack, "simulate/kf_session_change",
                           {"open_kfid": KFID, "external_userid": customer,
                            "change_type": change_type, "new_servicer_userid": new_servicer,
                            **extra})
    await stack.runtime.drain()
    return result


async def _remind(stack: Stack, minutes: float) -> int:
    at(stack, minutes)
    return await stack.runtime.services.handoff_reminders.run("acme")


def _reminders(stack: Stack, guide: str) -> list[str]:
    return [m["content"]["content"] for m in stack.sandbox.state("acme")["app_messages"]
            if m["msgtype"] == "text" and m["userid"] == guide]


async def _summary(stack: Stack) -> Any:
    status, body = await stack.admin(f"/handoffs/summary?from={DAY}&to={DAY}")
    assert status == 200, body
    return body


async def _page(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with http.get(url, allow_redirects=False) as resp:
        return resp.status, await resp.text()


async def _lina_contact(stack: Stack, name: str) -> str:
    """A customer who added lina (a contact, so the console has their page), the bot routing
    their 微信客服 messages."""
    use_router(stack)
    added = await stack.sandbox.simulate_add_contact("acme", userid="lina", name=name)
    await stack.runtime.drain()
    return str(added["external_userid"])


def _link(notice: str) -> str:
    found = re.search(r'href="([^"]+)"', notice)
    assert found is not None, notice
    return found.group(1)


async def _name(stack: Stack, userid: str, name: str) -> None:
    """A guide of the directory by name."""
    async with stack.runtime.services.db.write() as s:
        await contacts_repo.ensure_guide(s, tenant="acme", userid=userid, store_id="",
                                         name=name)


async def test_a_session_wecom_queued_and_a_servicer_took_has_a_handoff_page(
        stack: Stack) -> None:
    use_router(stack)
    await _name(stack, "wangfang", "王芳")
    customer = "wmKFwecomqueue01"
    at(stack, 0)
    await customer_writes(stack, customer, "你好")  # the bot answers (state 0)
    # WeCom's own routing puts the customer in the pool: guidebot made no handoff
    await control(stack, "simulate/kf_queue", {"open_kfid": KFID, "external_userid": customer})
    assert session(await kf_state(stack), customer)["service_state"] == 2
    at(stack, 1)
    await customer_writes(stack, customer, "有人吗")
    assert [r.status for r in await kf_rows(stack, customer)] == ["replied", "skipped"]
    _, waiting = await stack.admin("/handoffs?status=waiting")
    assert waiting["items"] == []  # nothing guidebot handed: not followed before a take
    at(stack, 3)
    taken = await _session_change(stack, customer, 1, "wangfang")
    assert taken["event"]["change_type"] == 1
    event = (await kf_rows(stack, customer))[-1]
    assert (event.msgid, event.event_type) == (taken["msgid"], "session_status_change")
    assert (event.status, event.route, event.guide) == ("handoff", "wecom", "wangfang")
    status, body = await stack.admin("/handoffs?status=waiting")
    [item] = body["items"]
    assert status == 200 and (item["guide"], item["via"], item["msgid"]) == (
        "wangfang", "wecom", event.msgid)
    assert item["handed_at"] == (T0 + timedelta(minutes=3)).isoformat()
    # the customer's wait is read from the take (what was read began there)
    assert item["waiting_since"] == item["handed_at"]
    assert await _remind(stack, 12) == 0 and await _remind(stack, 13) == 1
    [notice] = _reminders(stack, "wangfang")
    url = _link(notice)
    public = stack.runtime.services.settings.server.public_url
    assert url == f"{public}/sidebar/acme/handoff/{event.msgid}"
    page = urlsplit(url).path
    # the link opens for the servicer who took the session
    wangfang = await sign_in(stack, "wangfang")
    zhouyi = await sign_in(stack, "zhouyi")
    beta = await sign_in(stack, "wangfang", tenant="beta")
    try:
        status, html = await _page(wangfang.http, f"{stack.bot_url}{page}")
        assert status == 200, html
        assert "微信客服接待" in html and "从待接入池分配给你" in html
        texts = re.findall(r'<span class="text">([^<]*)</span>', html)
        assert texts[0] == "你好" and "有人吗" in texts
        # the take is an event row, worded for the guide (not WeCom's type name): who took
        # it, by their name in the guides' directory
        assert "[导购 王芳 接入]" in texts and "[event]" not in html
        # another guide of the tenant: the same 404 as no such handoff
        status, html = await _page(zhouyi.http, f"{stack.bot_url}{page}")
        assert status == 404 and "有人吗" not in html
        # another tenant: its session does not open acme's page, nor acme's msgid under it
        status, html = await _page(beta.http, f"{stack.bot_url}{page}")
        assert status == 302 and "有人吗" not in html
        status, html = await _page(beta.http,
                                   f"{stack.bot_url}/sidebar/beta/handoff/{event.msgid}")
        assert status == 404 and "有人吗" not in html
    finally:
        for guide in (wangfang, zhouyi, beta):
            await guide.http.close()
    # wangfang answers 12 minutes after the take; the console shows how it came
    at(stack, 15)
    await control(stack, "simulate/kf_servicer_message",
                  {"open_kfid": KFID, "external_userid": customer, "text": "您好"})
    await stack.runtime.drain()
    wang = next(g for g in (await _summary(stack))["guides"] if g["guide"] == "wangfang")
    assert (wang["handoffs"], wang["replied"], wang["median_first_response_s"]) == (1, 1, 720)
    console = Console(stack)
    try:
        await console.login("acme", "acme-admin-token")
        status, html, _ = await console.get(f"/console/acme/handoffs?from={DAY}&to={DAY}")
        assert status == 200 and 'data-guide="wangfang"' in html
        assert 'id="figures-note"' in html and "企业微信自行分配" in html
    finally:
        await console.close()
    # asking for a person while wangfang has it: not handed again
    at(stack, 16)
    await customer_writes(stack, customer, "转人工")
    # (the bot's first answer moved the session to 1, 智能助手; no handoff since)
    assert [c["body"]["service_state"] for c in stack.calls("kf/service_state/trans")] == [1]
    again = (await kf_rows(stack, customer))[-1]
    assert again.status == "skipped" and again.reason.startswith("already with wangfang")
    # wangfang transfers it to lina: it continues WeCom's handoff, and its page opens for lina
    at(stack, 17)
    await _session_change(stack, customer, 2, "lina")
    moved = (await kf_rows(stack, customer))[-1]
    assert (moved.status, moved.route, moved.servicer_userid) == ("skipped", "", "lina")
    _, listed = await stack.admin("/handoffs?status=all")
    assert sorted((i["guide"], i["via"], i["end"], i["msgid"]) for i in listed["items"]) == [
        ("lina", "transfer", None, event.msgid), ("wangfang", "wecom", "transferred",
                                                   event.msgid)]
    lina = await sign_in(stack, "lina")
    try:
        status, _ = await _page(lina.http, f"{stack.bot_url}{page}")
        assert status == 200
    finally:
        await lina.http.close()


async def test_the_bots_cards_show_on_the_handoff_page_as_the_customer_saw_them(
        aiohttp_server: Any, tmp_path: Path, db_url: str,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    stack, customer = await card_stack(aiohttp_server, tmp_path, db_url)
    try:
        _, card = [c["body"] for c in stack.calls("kf/send_msg")]
        assert card["msgtype"] == "miniprogram"
        await customer_writes(stack, customer, "我要转人工")
        [notice] = [m for m in stack.sandbox.state("acme")["app_messages"]
                    if m["userid"] == "lina" and m["msgtype"] == "textcard"]
        page = urlsplit(notice["content"]["url"]).path
        lina = await sign_in(stack, "lina")
        try:
            status, html = await _page(lina.http, f"{stack.bot_url}{page}")
        finally:
            await lina.http.close()
        assert status == 200, html
        assert "客户转人工 · 孙悦" in html
        # the card as the customer saw it: the console's card partial, its product's price
        [shown] = re.findall(r'<div class="card mp" data-card="miniprogram">(.*?)</div>', html,
                             re.S)
        assert "<strong>修护精华液 30ml</strong>" in shown
        assert "小程序 · pages/goods/detail.html?id=1002 · SKU-SERUM-02" in shown
        assert re.search(r"¥\s?\d", shown), shown  # the catalog's price
        assert "&amp;t=" not in shown and "t=" not in shown.split("id=1002")[1]
        assert "[miniprogram]" not in html and html.count('<li class="reply">') == 2
        # the console's content page renders cards with the same partial
        console = Console(stack)
        try:
            await console.login("acme", "acme-admin-token")
            status, content, _ = await console.get("/console/acme/content")
            assert status == 200 and 'data-card="miniprogram"' in content
        finally:
            await console.close()
        logged = caplog.text
        assert "修护精华有货吗" not in logged and "我要转人工" not in logged
    finally:
        await stack.http.close()


async def test_an_unknown_change_type_is_recorded_harmlessly(
        stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    customer = await _lina_contact(stack, "孙悦")
    at(stack, 0)
    await customer_writes(stack, customer, "我要转人工")
    [handed] = await kf_rows(stack, customer)
    assert (handed.status, handed.guide) == ("handoff", "lina")
    caplog.set_level(logging.INFO)
    at(stack, 2)
    odd = await _session_change(stack, customer, 4, "zhouyi", unconfirmed=True)
    assert odd["event"]["change_type"] == 4
    row = (await kf_rows(stack, customer))[-1]
    assert row.msgid == odd["msgid"] and row.id is not None
    assert (row.status, row.servicer_userid, row.guide) == ("skipped", "", None)
    assert "change_type 4 unknown" in row.reason
    assert f"id={row.id}" in caplog.text and "unknown change_type=4" in caplog.text
    # nothing changed: lina still has it, is reminded, zhouyi has no page
    assert session(await kf_state(stack), customer)["servicer_userid"] == "lina"
    _, waiting = await stack.admin("/handoffs?status=waiting")
    assert [(i["guide"], i["msgid"], i["end"]) for i in waiting["items"]] == [
        ("lina", handed.msgid, None)]
    assert await _remind(stack, 10) == 1 and len(_reminders(stack, "lina")) == 1
    assert _reminders(stack, "zhouyi") == []
    services = stack.runtime.services
    assert await services.kf.handoff.view("acme", "zhouyi", handed.msgid) is None
    assert await services.kf.handoff.view("acme", "zhouyi", row.msgid) is None
    assert await services.kf.handoff.view("acme", "lina", handed.msgid) is not None
    at(stack, 11)
    await customer_writes(stack, customer, "转人工")
    again = (await kf_rows(stack, customer))[-1]
    assert again.status == "skipped" and again.reason.startswith("already with lina")
    # in a session nobody holds (queued by WeCom), it starts nothing either
    other = "wmKFunknown00001"
    await customer_writes(stack, other, "你好")
    await control(stack, "simulate/kf_queue", {"open_kfid": KFID, "external_userid": other})
    await _session_change(stack, other, 4, "zhouyi", unconfirmed=True)
    assert (await kf_rows(stack, other))[-1].status == "skipped"
    _, listed = await stack.admin("/handoffs?status=all")
    assert {i["external_userid"] for i in listed["items"]} == {customer}
    # without "unconfirmed" the sandbox refuses a change_type it does not know
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/acme/simulate/kf_session_change",
                               json={"open_kfid": KFID, "external_userid": other,
                                     "change_type": 4}) as resp:
        assert resp.status == 400


async def test_the_customer_page_words_wecoms_assignment_and_its_event(stack: Stack) -> None:
    customer = await _lina_contact(stack, "张三")
    at(stack, 0)
    await customer_writes(stack, customer, "你好")
    await control(stack, "simulate/kf_queue", {"open_kfid": KFID, "external_userid": customer})
    at(stack, 3)
    await _name(stack, "wangfang", "王芳")  # zhouyi has no name in the directory
    taken = await _session_change(stack, customer, 1, "wangfang")
    at(stack, 4)
    moved = await _session_change(stack, customer, 2, "zhouyi")
    at(stack, 5)
    odd = await _session_change(stack, customer, 4, "lina", unconfirmed=True)
    at(stack, 6)
    ended = await _session_change(stack, customer, 3)
    console = Console(stack)

    def row(html: str, change: Any) -> str:
        found = html[html.index(f'<tr data-msgid="{change["msgid"]}"'):]
        return found[:found.index("</tr>")]

    try:
        await console.login("acme", "acme-admin-token")
        status, html, _ = await console.get(f"/console/acme/customers/{customer}")
        assert status == 200, html
        # the take: worded for HQ, as WeCom's assignment (not "handed to the guide" by the bot)
        assert "[导购 王芳 接入]" in row(html, taken) and "企业微信分配" in row(html, taken)
        assert "已转导购" not in row(html, taken) and "[event]" not in html
        # the transfer names who got it (the userid: no name in the directory), the end and
        # a change_type the facts do not have are said as they are
        assert "[转接给 zhouyi]" in row(html, moved)
        assert "[会话状态变更（change_type 4）]" in row(html, odd)
        assert "[会话结束]" in row(html, ended)
        assert "会话接入、转接或结束" not in html
        status, html, _ = await console.get(f"/console/acme/customers/{customer}?lang=en")
        assert "[王芳 took the session from the pool]" in row(html, taken)
        assert "[Transferred to zhouyi]" in row(html, moved)
        assert "[Session status changed (change_type 4)]" in row(html, odd)
        assert "[Session ended]" in row(html, ended)
    finally:
        await console.close()
    # the take's handoff page, for zhouyi who got the session after it: the same words
    zhouyi = await sign_in(stack, "zhouyi")
    try:
        status, html = await _page(zhouyi.http,
                                   f"{stack.bot_url}/sidebar/acme/handoff/{taken['msgid']}")
        assert status == 200, html
        texts = re.findall(r'<span class="text">([^<]*)</span>', html)
        assert [t for t in texts if t.startswith("[")] == [
            "[导购 王芳 接入]", "[转接给 zhouyi]", "[会话状态变更（change_type 4）]", "[会话结束]"]
    finally:
        await zhouyi.http.close()
