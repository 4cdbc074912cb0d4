"""Failed sign-ins throttled per (tenant or "operator", client address) over HTTP: after
`[server] signin_failures` refusals the address is answered 429 with Retry-After, a right
token included, until the window (the injected clock) has passed; 操作日志 keeps the first
refusals and one sign_in_throttled row; addresses (by the trusted header's rightmost entry)
and tenants are counted apart; a sign-in clears the count; the operator's sign-in too. Wrong
bearer tokens (admin API, console pages, the operator's routes) share the count, and the
right one is refused while it lasts; a request without the header is not counted."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDictProxy

from guidebot.web.pages.console import catalog
from guidebot.web.signin_throttle import SIGNINS
from tests.support.audit import raw_rows, start_wecom, wecom_callback
from tests.support.console import Console, csrf_in
from tests.support.metrics import scrape, value
from tests.support.sidebar import oauth_code
from tests.support.stack import Stack, start_stack

FAILURES = 3
WINDOW_S = 15 * 60
OPERATOR_TOKEN = "operator-token-for-tests-5d2c"
SERVER = f"""
[server]
signin_failures = {FAILURES}
signin_window_minutes = 15
client_ip_header = "X-Forwarded-For"
operator_token = "{OPERATOR_TOKEN}"
"""
HOME = "198.51.100.7"
SPOOFED = (f"203.0.113.{n}" for n in itertools.count(1))  # what a client may put first


class Clock:
    def __init__(self) -> None:
        self.now = 50_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Guarded:
    stack: Stack
    clock: Clock


@pytest.fixture
async def guarded(aiohttp_server: Any, tmp_path: Any, db_url: str) -> Any:
    stack = await start_stack(aiohttp_server, tmp_path, db_url, config_extra=SERVER,
                              acme_config='console = { members = ["lina"] }\n')
    clock = Clock()
    stack.app[SIGNINS].clock = clock
    yield Guarded(stack, clock)
    await stack.http.close()


Answer = tuple[int, str, CIMultiDictProxy[str]]


def _via_proxy(address: str) -> dict[str, str]:
    """The header as our proxy passes it: whatever the client sent, then the address it saw."""
    return {"X-Forwarded-For": f"{next(SPOOFED)}, {address}"}


async def _token_sign_in(stack: Stack, token: str, *, address: str = HOME,
                         tenant: str = "acme", lang: str = "zh-CN") -> Answer:
    headers = _via_proxy(address)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(f"{stack.bot_url}/console/login?lang={lang}",
                            headers=headers) as resp:
            csrf = csrf_in(await resp.text())
        async with http.post(f"{stack.bot_url}/console/login", headers=headers,
                             allow_redirects=False,
                             data={"tenant": tenant, "token": token, "_csrf": csrf}) as resp:
            return resp.status, await resp.text(), resp.headers


async def _operator_sign_in(stack: Stack, token: str, address: str = HOME) -> Answer:
    headers = _via_proxy(address)
    login = f"{stack.bot_url}/operator/login"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(login, headers=headers) as resp:
            csrf = (await resp.text()).split('name="csrf" value="')[1].split('"')[0]
        async with http.post(login, headers=headers, allow_redirects=False,
                             data={"csrf": csrf, "token": token}) as resp:
            return resp.status, await resp.text(), resp.headers


async def _sign_in_rows(stack: Stack, tenant: str = "acme") -> list[tuple[str, int]]:
    """The tenant's sign-in rows of 操作日志, oldest first: (action, status); read from the
    table, as the test client's own address may be throttled on the API too."""
    return [(r["action"], r["status"]) for r in await raw_rows(stack)
            if r["tenant"] == tenant and r["action"].startswith("sign_in")]


async def test_token_sign_in_is_throttled_after_the_failures_even_with_the_right_token(
        guarded: Guarded) -> None:
    stack, clock = guarded.stack, guarded.clock
    for _ in range(FAILURES):
        status, html, _ = await _token_sign_in(stack, "wrong")
        assert status == 401 and catalog("zh-CN")["login.failed"] in html
    status, html, headers = await _token_sign_in(stack, "wrong")
    assert status == 429 and headers["Retry-After"] == str(WINDOW_S)
    assert 'id="throttled"' in html and "请 15 分钟后再试" in html
    clock.now += 60
    status, html, headers = await _token_sign_in(stack, "acme-admin-token", lang="en")
    assert status == 429 and headers["Retry-After"] == str(WINDOW_S - 60)
    assert "try again in 14 min" in html and "Set-Cookie" not in headers
    for _ in range(5):
        assert (await _token_sign_in(stack, "wrong"))[0] == 429
    clock.now += WINDOW_S - 60  # the window has passed
    status, _, headers = await _token_sign_in(stack, "acme-admin-token")
    assert status == 303 and headers["Location"] == "/console/acme/"

    assert await _sign_in_rows(stack) == [("sign_in_refused", 401)] * FAILURES + [
        ("sign_in_throttled", 429), ("sign_in", 303)]
    samples = await scrape(stack)
    name = "guidebot_signins_refused_total"
    assert value(samples, name, kind="refused") == FAILURES
    assert value(samples, name, kind="throttled") == 7
    assert value(samples, name, kind="bearer_refused") == 0
    assert {labels for labels in samples[name]} == {
        (("kind", kind),) for kind in ("refused", "throttled", "bearer_refused",
                                       "bearer_throttled")}


async def test_the_audit_page_words_the_throttled_sign_in_in_both_languages(
        guarded: Guarded) -> None:
    stack = guarded.stack
    for _ in range(FAILURES + 1):
        await _token_sign_in(stack, "wrong")
    console = Console(stack)  # from the test client's own address: not throttled
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        for lang, words in (("zh-CN", "登录被限制（失败次数过多）（管理员令牌）"),
                            ("en", "Sign-in throttled (too many failures) (admin token)")):
            status, html, _ = await console.get(f"/console/acme/audit?lang={lang}"
                                                "&actor=admin+token")
            assert status == 200 and html.count('data-action="sign_in_throttled"') == 1
            assert words in html
            assert html.count('data-action="sign_in_refused"') == FAILURES
    finally:
        await console.close()


async def test_addresses_and_tenants_are_counted_apart(guarded: Guarded) -> None:
    stack = guarded.stack
    for _ in range(FAILURES):
        await _token_sign_in(stack, "wrong")
    assert (await _token_sign_in(stack, "wrong"))[0] == 429
    # another address (the proxy's rightmost entry), and the same address on another tenant
    assert (await _token_sign_in(stack, "wrong", address="198.51.100.8"))[0] == 401
    assert (await _token_sign_in(stack, "acme-admin-token", address="198.51.100.8"))[0] == 303
    assert (await _token_sign_in(stack, "wrong", tenant="beta"))[0] == 401
    assert (await _token_sign_in(stack, "beta-admin-token", tenant="beta"))[0] == 303
    # what the client itself writes in the header changes nothing
    assert (await _token_sign_in(stack, "acme-admin-token"))[0] == 429
    assert await _sign_in_rows(stack) == [("sign_in_refused", 401)] * FAILURES + [
        ("sign_in_throttled", 429), ("sign_in_refused", 401), ("sign_in", 303)]
    assert await _sign_in_rows(stack, "beta") == [("sign_in_refused", 401), ("sign_in", 303)]


async def test_without_the_header_setting_the_connection_address_counts(stack: Stack) -> None:
    """The test stack sets no client_ip_header: X-Forwarded-For is not trusted, every
    attempt comes from the test client's address (the default 10 failures)."""
    for n in range(10):
        status, _, _ = await _token_sign_in(stack, "wrong", address=f"198.51.100.{n}")
        assert status == 401
    status, _, headers = await _token_sign_in(stack, "acme-admin-token", address="192.0.2.1")
    assert status == 429 and headers["Retry-After"] == str(WINDOW_S)


async def test_a_sign_in_clears_the_count(guarded: Guarded) -> None:
    stack = guarded.stack
    for _ in range(FAILURES - 1):
        assert (await _token_sign_in(stack, "wrong"))[0] == 401
    assert (await _token_sign_in(stack, "acme-admin-token"))[0] == 303
    for _ in range(FAILURES):  # a fresh count: all of them refused, none throttled
        assert (await _token_sign_in(stack, "wrong"))[0] == 401
    assert (await _token_sign_in(stack, "wrong"))[0] == 429
    assert [a for a, _ in await _sign_in_rows(stack)] == (
        ["sign_in_refused"] * (FAILURES - 1) + ["sign_in"]
        + ["sign_in_refused"] * FAILURES + ["sign_in_throttled"])


async def test_the_operator_sign_in_is_throttled(guarded: Guarded) -> None:
    stack, clock = guarded.stack, guarded.clock
    for _ in range(FAILURES):
        assert (await _operator_sign_in(stack, "wrong"))[0] == 403
    status, html, headers = await _operator_sign_in(stack, OPERATOR_TOKEN)
    assert status == 429 and headers["Retry-After"] == str(WINDOW_S)
    assert "请 15 分钟后再试" in html and "Set-Cookie" not in headers
    assert (await _operator_sign_in(stack, OPERATOR_TOKEN, address="198.51.100.8"))[0] == 303
    assert (await _token_sign_in(stack, "acme-admin-token"))[0] == 303  # the console's apart
    clock.now += WINDOW_S
    status, _, headers = await _operator_sign_in(stack, OPERATOR_TOKEN)
    assert status == 303 and headers["Location"] == "/operator/usage"


async def test_refused_wecom_members_are_throttled_too(guarded: Guarded) -> None:
    stack = guarded.stack
    for _ in range(FAILURES):
        console = Console(stack)
        try:
            state = (await start_wecom(console))["state"]
            status, _, _ = await wecom_callback(console, state,
                                                await oauth_code(stack, "chenjing"))
            assert status == 403  # not a console member
        finally:
            await console.close()
    console = Console(stack)
    try:
        status, html, resp = await console.get("/console/login/wecom?tenant=acme")
        assert status == 429 and resp.headers["Retry-After"] == str(WINDOW_S)
        assert "请 15 分钟后再试" in html
    finally:
        await console.close()
    assert await _sign_in_rows(stack) == [("sign_in_refused", 403)] * FAILURES + [
        ("sign_in_throttled", 429)]


async def test_the_oldest_address_is_forgotten_past_the_cap(guarded: Guarded) -> None:
    stack = guarded.stack
    stack.app[SIGNINS].cap = 2
    for _ in range(FAILURES):
        await _token_sign_in(stack, "wrong")
    assert (await _token_sign_in(stack, "wrong"))[0] == 429
    await _token_sign_in(stack, "wrong", address="198.51.100.8")
    assert (await _token_sign_in(stack, "wrong"))[0] == 429  # two kept: still throttled
    await _token_sign_in(stack, "wrong", address="198.51.100.9")
    assert (await _token_sign_in(stack, "acme-admin-token"))[0] == 303  # the oldest dropped


async def _bearer_get(stack: Stack, path: str, token: str | None,
                      address: str = HOME) -> tuple[int, str, CIMultiDictProxy[str]]:
    headers = _via_proxy(address)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with stack.http.get(f"{stack.bot_url}{path}", headers=headers,
                              allow_redirects=False) as resp:
        return resp.status, await resp.text(), resp.headers


API = "/api/v1/acme/guides"


async def test_wrong_admin_api_tokens_are_throttled_even_the_right_one(
        guarded: Guarded) -> None:
    stack, clock = guarded.stack, guarded.clock
    for _ in range(FAILURES):
        assert (await _bearer_get(stack, API, "wrong"))[0] == 403
    status, body, headers = await _bearer_get(stack, API, "acme-admin-token")
    assert status == 429 and headers["Retry-After"] == str(WINDOW_S)
    problem = json.loads(body)
    assert problem["code"] == "auth.throttled" and problem["field"] == "Authorization"
    assert "guides" not in problem
    clock.now += 60
    status, _, headers = await _bearer_get(stack, API, "acme-admin-token")
    assert status == 429 and headers["Retry-After"] == str(WINDOW_S - 60)
    # another address, another tenant: counted apart
    assert (await _bearer_get(stack, API, "acme-admin-token", "198.51.100.8"))[0] == 200
    assert (await _bearer_get(stack, "/api/v1/beta/guides", "beta-admin-token"))[0] == 200
    clock.now += WINDOW_S - 60
    status, body, _ = await _bearer_get(stack, API, "acme-admin-token")
    assert status == 200 and "guides" in json.loads(body)

    samples = await scrape(stack)
    name = "guidebot_signins_refused_total"
    assert value(samples, name, kind="bearer_refused") == FAILURES
    assert value(samples, name, kind="bearer_throttled") == 2
    assert value(samples, name, kind="refused") == 0
    assert await _sign_in_rows(stack) == []  # no 操作日志 row for a bearer


async def test_requests_without_a_bearer_are_not_counted(guarded: Guarded) -> None:
    stack = guarded.stack
    for _ in range(FAILURES * 3):
        assert (await _bearer_get(stack, API, None))[0] == 401
        assert (await _bearer_get(stack, "/console/acme/", None))[0] == 303  # to sign in
    for _ in range(FAILURES - 1):
        assert (await _bearer_get(stack, API, "wrong"))[0] == 403
    assert (await _bearer_get(stack, API, "acme-admin-token"))[0] == 200
    assert (await _bearer_get(stack, API, "wrong"))[0] == 403  # the last one let through
    assert (await _bearer_get(stack, API, "acme-admin-token"))[0] == 429


async def test_console_bearers_share_the_count_with_sign_ins(guarded: Guarded) -> None:
    stack, clock = guarded.stack, guarded.clock
    assert (await _token_sign_in(stack, "wrong"))[0] == 401
    for _ in range(FAILURES - 1):
        assert (await _bearer_get(stack, "/console/acme/", "wrong"))[0] == 403
    status, text, headers = await _bearer_get(stack, "/console/acme/", "acme-admin-token")
    assert status == 429 and headers["Retry-After"] == str(WINDOW_S)
    assert "try again in 15 min" in text and "¥" not in text
    assert (await _bearer_get(stack, API, "acme-admin-token"))[0] == 429  # the API too
    assert (await _token_sign_in(stack, "acme-admin-token"))[0] == 429  # and the sign-in
    assert (await _bearer_get(stack, "/console/acme/", "acme-admin-token",
                              "198.51.100.8"))[0] == 200
    clock.now += WINDOW_S
    assert (await _bearer_get(stack, "/console/acme/", "acme-admin-token"))[0] == 200
    # the sign-in's rows only: its refusal, and its throttling (a bearer's 429 wrote none)
    assert await _sign_in_rows(stack) == [("sign_in_refused", 401), ("sign_in_throttled", 429)]


async def test_the_operator_bearer_is_throttled(guarded: Guarded) -> None:
    stack, clock = guarded.stack, guarded.clock
    usage = "/operator/usage?format=json"
    for _ in range(FAILURES):
        assert (await _bearer_get(stack, usage, "wrong"))[0] == 403
    status, body, headers = await _bearer_get(stack, usage, OPERATOR_TOKEN)
    assert status == 429 and headers["Retry-After"] == str(WINDOW_S)
    assert "tenants" not in json.loads(body)
    assert (await _operator_sign_in(stack, OPERATOR_TOKEN))[0] == 429  # one count
    assert (await _bearer_get(stack, usage, OPERATOR_TOKEN, "198.51.100.8"))[0] == 200
    assert (await _bearer_get(stack, API, "acme-admin-token"))[0] == 200  # a tenant's apart
    clock.now += WINDOW_S
    status, body, _ = await _bearer_get(stack, usage, OPERATOR_TOKEN)
    assert status == 200 and "tenants" in json.loads(body)
