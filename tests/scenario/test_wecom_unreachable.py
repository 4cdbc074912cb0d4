"""WeCom unreachable while a member signs in (the sandbox's gateway answers 502 to
auth/getuserinfo, so the code is never judged): the console answers 503 with its worded
page, records nothing in 操作日志 and does not count it against the address, so after
`signin_failures` of them a real sign-in still works; the sidebar and the mobile workbench
word it too."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from guidebot.web.pages.console import catalog
from tests.support.audit import entries, start_team, start_wecom, wecom_callback
from tests.support.console import Console
from tests.support.sidebar import oauth_code
from tests.support.stack import Stack

ZH = catalog("zh-CN")
EN = catalog("en")
USERINFO = "auth/getuserinfo"


@pytest.fixture
async def team(aiohttp_server: Any, tmp_path: Any, db_url: str) -> Any:
    s = await start_team(aiohttp_server, tmp_path, db_url)
    yield s
    await s.http.close()


async def _gateway_down(stack: Stack, times: int) -> None:
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/faults", json={
            "tenant": "acme", "path": USERINFO, "http_status": 502, "times": times}) as resp:
        assert resp.status == 200, await resp.text()


async def test_the_console_words_wecom_unreachable_and_neither_counts_nor_records_it(
        team: Stack) -> None:
    failures = team.settings.server.signin_failures
    await _gateway_down(team, failures + 1)
    console = Console(team)
    try:
        for _ in range(failures):
            state = (await start_wecom(console))["state"]
            status, html, _ = await wecom_callback(console, state,
                                                   await oauth_code(team, "lina"))
            assert status == 503 and ZH["login.wecom_unreachable"] in html
        state = (await start_wecom(console))["state"]
        status, html, _ = await console.get("/console/login/wecom", params={
            "tenant": "acme", "code": await oauth_code(team, "lina"), "state": state,
            "lang": "en"})
        assert status == 503 and EN["login.wecom_unreachable"] in html
        assert await entries(team) == []
        # WeCom back: the same address signs in (it was never throttled)
        state = (await start_wecom(console))["state"]
        status, _, resp = await wecom_callback(console, state, await oauth_code(team, "lina"))
        assert status == 303 and resp.headers["Location"] == "/console/acme/"
        assert [(e["actor"], e["action"]) for e in await entries(team)] == [
            ("lina", "sign_in")]
    finally:
        await console.close()


async def _signed_in_at(stack: Stack, page: str) -> tuple[int, str]:
    """Open `page` (the sidebar or the workbench), come back from WeCom with a code."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(f"{stack.bot_url}{page}", allow_redirects=False) as resp:
            assert resp.status == 302, resp.status
            state = parse_qs(urlsplit(resp.headers["Location"]).query)["state"][0]
        async with http.get(f"{stack.bot_url}{page}", allow_redirects=False, params={
                "code": await oauth_code(stack, "lina"), "state": state}) as resp:
            return resp.status, await resp.text()


async def test_the_sidebar_and_the_workbench_word_wecom_unreachable(team: Stack) -> None:
    await _gateway_down(team, 2)
    status, html = await _signed_in_at(team, "/sidebar/acme")
    assert status == 503 and "暂时无法连接企业微信" in html and "侧边栏" in html
    status, html = await _signed_in_at(team, "/m/acme")
    assert status == 503 and "暂时无法连接企业微信" in html and "工作台" in html
    # WeCom back: the same steps sign in
    status, _ = await _signed_in_at(team, "/sidebar/acme")
    assert status == 302
