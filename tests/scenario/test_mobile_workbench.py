"""移动工作台 (/m/<tenant>) over HTTP against the sandbox, signed in through WeCom's OAuth like
the sidebar. A guide with real adds (encrypted callbacks), a deletion by a customer, an order
credited, follow-up notes (one due today, one overdue, one later) and a 群发 task waiting for
them sees exactly those figures, their month's targets and today's to-dos. Store managers —
a department's leader in WeCom (department/get's department_leader), another named in
stores.toml, one of several stores — see their store's figures and its guides ranked, and
never another store; a guide sees no store; a member who is neither gets a worded page; no
session or another tenant's goes to WeCom's OAuth.

Every clock is set (the workbench's, the SOP engine's, the commerce intake's, the adds'
callback times, the order's paid_at): nothing depends on the time of day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from guidebot.commerce.statements import statement
from guidebot.stats.definitions import yuan
from tests.scenario.test_morning_digest import _add, _deleted_by_customer
from tests.support.commerce import paid, post_settled
from tests.support.sidebar import OAUTH_AUTHORIZE, oauth_code
from tests.support.sidebar import sign_in as sidebar_sign_in
from tests.support.stack import Stack, library_copy, start_stack
from tests.support.workbench import figure, ranked, sign_in

SHANGHAI = timedelta(hours=8)  # Asia/Shanghai, no DST
STORES = """
[[stores]]
id = "S01"
name = "静安嘉里中心店"
departments = [2]
managers = ["duo"]

[[stores]]
id = "S02"
name = "徐汇日月光店"
departments = [3]
managers = ["boss2"]
"""
SOP = """id = "wb_task"
title = "双十二预热群发"
enabled = true

[trigger]
on = "manual"

[[steps]]
at = "+1m"
channel = "guide_task"
message = "drop_double12_warmup"
"""
# mgr1 leads department 2 (S01) and duo department 3 (S02) in WeCom; neither works in a
# store, so neither is a guide. stores.toml adds duo to S01 and boss2 to S02.
DIRECTORY = {
    "departments": [{"id": 1, "name": "acme", "parentid": 0},
                    {"id": 2, "name": "静安嘉里中心店", "parentid": 1,
                     "department_leader": ["mgr1"]},
                    {"id": 3, "name": "徐汇日月光店", "parentid": 1,
                     "department_leader": ["duo"]}],
    "members": [{"userid": "lina", "name": "李娜", "department": [2]},
                {"userid": "wangfang", "name": "王芳", "department": [2]},
                {"userid": "chenjing", "name": "陈静", "department": [3]}],
    "deliver": True,
}


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A time in Shanghai on 2026-11-<day>, as UTC."""
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC) - SHANGHAI


NOW = local(20, 15)  # the workbench's "now": Friday 2026-11-20, 15:00 in Shanghai


async def workbench_stack(aiohttp_server: Any, tmp_path: Path, db_url: str) -> Stack:
    """The stack with this file's stores, SOP and address book, the workbench's clock at NOW."""
    library = library_copy(tmp_path, {"stores.toml": STORES, "sops/wb_task.toml": SOP})
    s = await start_stack(aiohttp_server, tmp_path, db_url, library=library)
    async with s.http.post(f"{s.sandbox_url}/_sandbox/acme/directory",
                           json=DIRECTORY) as resp:
        assert resp.status == 200, await resp.text()
    await s.runtime.drain()
    s.runtime.services.workbench.clock = lambda: NOW
    return s


@pytest.fixture
async def stack(aiohttp_server: Any, tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    s = await workbench_stack(aiohttp_server, tmp_path, db_url)
    yield s
    await s.http.close()


async def _month(stack: Stack) -> dict[str, str]:
    """lina: three adds this month (one today), one before it (last month); a deletion by a
    customer; an order of ¥26.05 credited; a 群发 task waiting; follow-ups today, yesterday
    (overdue) and next week. wangfang: one add. chenjing (S02): two adds."""
    services = stack.runtime.services
    c = {"old": await _add(stack, "lina", "许晴", datetime(2026, 10, 30, 4, tzinfo=UTC)),
         "a": await _add(stack, "lina", "张晓雨", local(3, 11)),
         "b": await _add(stack, "lina", "郑佳怡", local(19, 12)),
         "c": await _add(stack, "lina", "李雷", local(20, 10)),
         "w": await _add(stack, "wangfang", "韩梅梅", local(18, 12)),
         "x": await _add(stack, "chenjing", "周婷", local(10, 9)),
         "y": await _add(stack, "chenjing", "王强", local(11, 9))}
    await _deleted_by_customer(stack, "lina", c["old"], local(5, 9))

    services.commerce.clock = lambda: local(19, 20, 5)
    items = [{"sku": "SKU1", "category": "beauty", "quantity": 1, "amount_fen": 2605}]
    status, order = await post_settled(stack, paid("WB-1", customer=c["b"], items=items,
                                                   paid_at=local(19, 20)))
    assert status == 200 and order["guide"] == "lina", order

    services.sop.clock = lambda: local(19, 13)
    status, body = await stack.admin("/sops/wb_task/enroll", method="POST", json={
        "external_userid": c["a"], "guide": "lina"})
    assert status == 201, body
    services.sop.clock = lambda: local(19, 13, 5)
    await services.sop.tick("acme")
    _, tasks = await stack.admin("/tasks?guide=lina")
    assert [t["status"] for t in tasks["tasks"] if t["kind"] == "guide_task"] == ["sent"]

    guide = await sidebar_sign_in(stack, "lina")
    for customer, day in (("a", "2026-11-20"), ("b", "2026-11-19"), ("c", "2026-11-27")):
        status, _ = await guide.post(f"/customer/{c[customer]}/notes",
                                     {"text": "到店试色", "follow_up_on": day})
        assert status == 201
    await guide.http.close()

    status, body = await stack.admin("/targets/2026-11", method="PUT", json={
        "guides": {"lina": {"adds": 4, "gmv_fen": 10000}},
        "stores": {"S01": {"adds": 8}}})
    assert status == 200, body
    await services.stats.upkeep()
    return c


async def test_a_guide_sees_their_month_and_todays_todos(stack: Stack) -> None:
    c = await _month(stack)
    body = await statement(stack.runtime.services.db, stack.tenant(), "2026-11")
    [mine] = [r for r in body["statements"] if r["guide"] == "lina"]
    commission = int(mine["net_fen"])  # what 业绩 says
    assert commission > 0

    lina = await sign_in(stack, "lina")
    status, html = await lina.page()
    assert status == 200
    assert [figure(html, i) for i in ("wb-adds", "wb-deletions", "wb-orders", "wb-gmv",
                                      "wb-commission")] == [
        "3", "1", "1", "¥26.05", yuan(commission)]
    assert "新增客户 <span>3 / 4 · 75%</span>" in html
    assert "成交金额 <span>¥26.05 / ¥100.00 · 26%</span>" in html
    assert "<strong>1</strong> 个" in figure_block(html, "wb-tasks")
    assert "<li>双十二预热群发</li>" in html
    assert "<strong>2</strong> 位客户" in figure_block(html, "wb-follow-ups")
    follow_ups = html.split('id="wb-follow-up-list"', 1)[1].split("</ul>", 1)[0]
    assert follow_ups.index("郑佳怡") < follow_ups.index("张晓雨")  # the overdue one first
    assert "2026-11-19 已逾期" in follow_ups and "2026-11-20 今天" in follow_ups
    assert "李雷" not in follow_ups  # next week's
    assert f'/m/acme/customer/{c["a"]}' in follow_ups
    assert 'id="wb-store"' not in html  # a guide sees no store

    status, last = await lina.page("?range=last_month")
    assert status == 200 and figure(last, "wb-adds") == "1"  # the add of 10-30 (Shanghai)
    assert figure(last, "wb-orders") == "0" and "wb-targets" not in last
    status, week = await lina.page("?range=last_7")
    assert [figure(week, i) for i in ("wb-adds", "wb-deletions", "wb-gmv")] == [
        "2", "0", "¥26.05"]

    status, card = await lina.page(f"/customer/{c['a']}")
    assert status == 200 and "张晓雨" in card and "下次跟进 2026-11-20" in card
    status, other = await lina.page(f"/customer/{c['x']}")  # chenjing's customer
    assert status == 404 and "没有找到这位客户" in other
    for store in ("S01", "S02"):
        status, refused = await lina.page(f"?store={store}")
        assert status == 403 and "你不是这家门店的店长" in refused
    await lina.http.close()


def figure_block(html: str, ident: str) -> str:
    return html.split(f'id="{ident}"', 1)[1].split("</p>", 1)[0]


async def test_store_managers_see_their_stores_guides_ranked(stack: Stack) -> None:
    await _month(stack)
    commission = {r["guide"]: int(r["net_fen"]) for r in (await statement(
        stack.runtime.services.db, stack.tenant(), "2026-11"))["statements"]}

    mgr1 = await sign_in(stack, "mgr1")  # department 2's leader in WeCom
    status, html = await mgr1.page()
    assert status == 200 and "门店：静安嘉里中心店（本月）" in html
    assert 'id="wb-mine"' not in html  # not a guide
    assert [figure(html, i) for i in ("wb-store-adds", "wb-store-deletions",
                                      "wb-store-orders", "wb-store-gmv")] == [
        "4", "1", "1", "¥26.05"]
    assert "新增客户目标 <span>4 / 8 · 50%</span>" in html
    assert ranked(html) == [
        ["1", "李娜", "3", "3", "1", "¥26.05", yuan(commission["lina"]), "0%", "1"],
        ["2", "王芳", "1", "1", "0", "¥0.00", "¥0.00", "—", "0"]]
    assert 'aria-label="选择门店"' not in html  # one store: nothing to pick
    status, refused = await mgr1.page("?store=S02")
    assert status == 403 and "你不是这家门店的店长" in refused

    boss2 = await sign_in(stack, "boss2")  # S02's manager in stores.toml
    status, html = await boss2.page()
    assert status == 200 and "门店：徐汇日月光店（本月）" in html
    assert ranked(html) == [["1", "陈静", "2", "2", "0", "¥0.00", "¥0.00", "—", "0"]]
    assert (await boss2.page("?store=S01"))[0] == 403

    duo = await sign_in(stack, "duo")  # S02 in WeCom, S01 in stores.toml: picks one
    status, html = await duo.page()
    assert status == 200 and 'aria-label="选择门店"' in html
    assert "门店：静安嘉里中心店（本月）" in html  # the first by id
    status, html = await duo.page("?store=S02&range=last_month")
    assert status == 200 and "门店：徐汇日月光店（上月）" in html
    assert figure(html, "wb-store-adds") == "0"
    for member in (mgr1, boss2, duo):
        await member.http.close()


async def test_refusals(stack: Stack) -> None:
    customer = await _add(stack, "lina", "陈思", local(20, 9))
    visitor = await sign_in(stack, "visitor")  # a member, but no guide and no manager
    status, html = await visitor.page()
    assert status == 403 and "工作台只对导购和店长开放" in html
    assert (await visitor.page(f"/customer/{customer}"))[0] == 403
    await visitor.http.close()

    beta = await sign_in(stack, "lina", tenant="beta")
    async with aiohttp.ClientSession() as http:
        for cookies in ({}, {"gb_sidebar": beta.cookie()}, {"gb_sidebar": "x.y"}):
            for path in ("/m/acme", "/m/acme?store=S01", f"/m/acme/customer/{customer}"):
                async with http.get(f"{stack.bot_url}{path}", cookies=cookies,
                                    allow_redirects=False) as resp:
                    assert resp.status == 302, (path, cookies)  # to WeCom's OAuth
                    assert resp.headers["Location"].startswith(OAUTH_AUTHORIZE)
        async with http.get(f"{stack.bot_url}/m/nosuch", allow_redirects=False) as resp:
            assert resp.status == 404
        # a code WeCom refuses (spent or forged): a worded page, no session
        async with http.get(f"{stack.bot_url}/m/acme", allow_redirects=False) as resp:
            state = resp.cookies["gb_sidebar_state"].value
        async with http.get(f"{stack.bot_url}/m/acme", params={"code": "forged", "state": state},
                            allow_redirects=False) as resp:
            assert resp.status == 403 and "登录未完成" in await resp.text()
    await beta.http.close()


async def test_after_wecoms_oauth_the_member_comes_back_to_the_page_they_opened(
        stack: Stack) -> None:
    opened = "/m/acme?range=last_7&store=S01"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(f"{stack.bot_url}{opened}", allow_redirects=False) as resp:
            assert resp.status == 302
            state = parse_qs(urlsplit(resp.headers["Location"]).query)["state"][0]
        code = await oauth_code(stack, "mgr1")
        async with http.get(f"{stack.bot_url}/m/acme", params={"code": code, "state": state},
                            allow_redirects=False) as resp:
            assert resp.status == 302 and resp.headers["Location"] == opened
        async with http.get(f"{stack.bot_url}{opened}") as resp:
            assert resp.status == 200 and "门店：静安嘉里中心店（近7天）" in await resp.text()


async def test_the_sidebar_session_and_the_workbench_session_are_apart(stack: Stack) -> None:
    """Each is kept under its own path: signing in to one does not open the other, and the
    sidebar still returns to itself after WeCom's OAuth."""
    await _add(stack, "lina", "陈思", local(20, 9))
    guide = await sidebar_sign_in(stack, "lina")
    async with guide.http.get(f"{stack.bot_url}/m/acme", allow_redirects=False) as resp:
        assert resp.status == 302 and resp.headers["Location"].startswith(OAUTH_AUTHORIZE)
    await guide.http.close()


def _fen(money: str) -> int:
    yuan_, fen = money.removeprefix("¥").replace(",", "").split(".")
    return int(yuan_) * 100 + int(fen)


async def test_a_guide_who_moved_store_counts_in_each_store_with_that_stores_part(
        stack: Stack) -> None:
    """lina adds a customer and sells ¥100 in S01, moves to S02 (WeCom's directory), then adds
    one and sells ¥50 there, where a 群发 task waits for her: each store ranks her with its
    own part only, each store's guides add up to its figures, and the task counts in S02."""
    services = stack.runtime.services
    a = await _add(stack, "lina", "张晓雨", local(3, 11))
    await _add(stack, "wangfang", "韩梅梅", local(4, 12))
    services.commerce.clock = lambda: local(5, 20, 5)
    items = [{"sku": "SKU1", "category": "beauty", "quantity": 1, "amount_fen": 10000}]
    status, order = await post_settled(stack, paid("WB-A", customer=a, items=items,
                                                   paid_at=local(5, 20)))
    assert status == 200 and order["guide"] == "lina", order
    await services.stats.upkeep()

    moved = {**DIRECTORY, "members": [
        {"userid": "lina", "name": "李娜", "department": [3]},
        *[m for m in DIRECTORY["members"] if m["userid"] != "lina"]]}
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/acme/directory",
                               json=moved) as resp:
        assert resp.status == 200, await resp.text()
    await stack.runtime.drain()
    _, guides = await stack.admin("/guides")
    assert {g["userid"]: g["store"] for g in guides["guides"]}["lina"] == "S02", guides

    b = await _add(stack, "lina", "郑佳怡", local(12, 10))
    await _add(stack, "chenjing", "周婷", local(13, 9))
    services.commerce.clock = lambda: local(14, 20, 5)
    items = [{"sku": "SKU1", "category": "beauty", "quantity": 1, "amount_fen": 5000}]
    status, order = await post_settled(stack, paid("WB-B", customer=b, items=items,
                                                   paid_at=local(14, 20), store="S02"))
    assert status == 200 and order["guide"] == "lina", order
    services.sop.clock = lambda: local(14, 13)
    status, body = await stack.admin("/sops/wb_task/enroll", method="POST", json={
        "external_userid": b, "guide": "lina"})
    assert status == 201, body
    services.sop.clock = lambda: local(14, 13, 5)
    await services.sop.tick("acme")
    await services.stats.upkeep()

    duo = await sign_in(stack, "duo")  # manages both stores
    parts, waiting = {}, {}
    for store in ("S01", "S02"):
        status, html = await duo.page(f"?store={store}")
        assert status == 200
        rows = {r[1]: r for r in ranked(html)}
        parts[store] = {name: (int(r[3]), int(r[4]), _fen(r[5])) for name, r in rows.items()}
        waiting[store] = {name: r[8] for name, r in rows.items()}
        store_figures = (int(figure(html, "wb-store-adds")),
                         int(figure(html, "wb-store-orders")),
                         _fen(figure(html, "wb-store-gmv")))
        assert tuple(sum(p[i] for p in parts[store].values()) for i in range(3)) == (
            store_figures), (store, parts[store], store_figures)
    assert parts["S01"] == {"李娜": (1, 1, 10000), "王芳": (1, 0, 0)}
    assert parts["S02"] == {"李娜": (1, 1, 5000), "陈静": (1, 0, 0)}
    # lina's waiting 群发 task is her store's to chase now, not the one she left
    assert waiting == {"S01": {"李娜": "0", "王芳": "0"}, "S02": {"李娜": "1", "陈静": "0"}}
    await duo.http.close()
