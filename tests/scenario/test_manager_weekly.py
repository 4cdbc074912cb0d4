"""店长周报 over HTTP against the sandbox: at `[tenants.<id>.alerts] manager_weekly` (a
weekday and a time, the tenant's time zone) each store manager — a department's leader in
WeCom, or named in stores.toml — gets one app message per store about the week before
(Monday to Sunday): adds, deletions, net; orders and GMV against the week before that; the
top three guides by GMV; the guides with 群发 tasks waiting; the month's 业绩目标; a link to
the store in the workbench. Once per manager, store and week whatever runs the job (twice,
another process, both at once); a process starting after the time sends that week's, never
a past week's; nothing before the time or when not configured; the key is validated.

Every clock is set explicitly (the job's, the SOP engine's, the commerce intake's, the adds'
and deletions' callback times, the orders' paid_at): nothing depends on the time of day."""

from __future__ import annotations

import asyncio
import logging
import re
import tomllib
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from guidebot import jobs
from guidebot.app import RUNTIME, create_app
from guidebot.db.models import OutboxItem
from guidebot.errors import ConfigError
from guidebot.services import Services
from guidebot.settings import WeeklyAt, load_settings
from guidebot.workbench.weekly import change
from tests.scenario.test_mobile_workbench import DIRECTORY as WORKBENCH_DIRECTORY
from tests.scenario.test_mobile_workbench import STORES
from tests.scenario.test_morning_digest import _add, _deleted_by_customer, _sop
from tests.support.commerce import paid, post_settled
from tests.support.console import Console
from tests.support.stack import FAST_BACKOFF, ROOT, Stack, library_copy, start_stack, write_config

TEXTS = tomllib.loads((ROOT / "content_library/chat/texts.toml").read_text(encoding="utf-8"))
ON = '\n[tenants.acme.alerts]\nmanager_weekly = "MON 09:00"\n'
SHANGHAI = timedelta(hours=8)  # Asia/Shanghai, no DST
GUIDES = {"lina": "李娜", "wangfang": "王芳", "zhaoli": "赵丽", "sunqi": "孙琪"}
# mgr1 leads department 2 (S01) and duo department 3 (S02) in WeCom; stores.toml (the
# workbench's) adds duo to S01 and boss2 to S02. The three are members at the head office
# (the root department: no store), none of them a guide of a store.
MANAGERS = [{"userid": u, "name": n, "department": [1]}
            for u, n in (("mgr1", "周店长"), ("duo", "吴店长"), ("boss2", "郑店长"))]
DIRECTORY = {**WORKBENCH_DIRECTORY, "members": [
    *({"userid": u, "name": n, "department": [2]} for u, n in GUIDES.items()),
    {"userid": "chenjing", "name": "陈静", "department": [3]}, *MANAGERS]}


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A time in Shanghai on 2026-11-<day>, as UTC (the 16th and the 23rd are Mondays)."""
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC) - SHANGHAI


async def _stack(aiohttp_server: Any, tmp_path: Path, db_url: str, extra: str = ON,
                 directory: dict[str, Any] = DIRECTORY) -> Stack:
    library = library_copy(tmp_path, {"stores.toml": STORES,
                                       "sops/wk_task.toml": _sop("wk_task", "周末到店群发",
                                                                 reminder=False)})
    s = await start_stack(aiohttp_server, tmp_path, db_url, library=library,
                          config_extra=extra)
    async with s.http.post(f"{s.sandbox_url}/_sandbox/acme/directory",
                           json=directory) as resp:
        assert resp.status == 200, await resp.text()
    await s.runtime.drain()
    return s


@pytest.fixture
async def stack(aiohttp_server: Any, tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    s = await _stack(aiohttp_server, tmp_path, db_url)
    yield s
    await s.http.close()


async def _order(stack: Stack, order_no: str, customer: str, fen: int, at: datetime,
                 guide: str) -> None:
    stack.runtime.services.commerce.clock = lambda: at + timedelta(minutes=5)
    items = [{"sku": "SKU1", "category": "beauty", "quantity": 1, "amount_fen": fen}]
    status, order = await post_settled(stack, paid(order_no, customer=customer, items=items,
                                                   paid_at=at))
    assert status == 200 and order["guide"] == guide, order


async def _weeks(stack: Stack) -> None:
    """The week before (9th–15th): lina adds 张晓雨, who orders ¥100.00. The week (16th–22nd)
    in S01: lina adds two and is deleted by 张晓雨, orders ¥26.05 and ¥100.00; wangfang adds
    one who orders ¥50.00; zhaoli adds one who orders ¥30.00; sunqi adds one who orders ¥1.00
    late on Sunday and ¥999.00 just after midnight (Monday: not the week's). chenjing (S02)
    adds one. lina adds one more on Monday the 23rd (not the week's). A 群发 task waits for
    lina (to two customers) and one for wangfang. S01's November targets: 10 adds, ¥500.00."""
    services = stack.runtime.services
    c = {"a": await _add(stack, "lina", "张晓雨", local(10, 11)),
         "b": await _add(stack, "lina", "郑佳怡", local(17, 12)),
         "c": await _add(stack, "lina", "李雷", local(18, 12)),
         "d": await _add(stack, "wangfang", "韩梅梅", local(19, 12)),
         "g": await _add(stack, "zhaoli", "周婷", local(16, 0, 10)),
         "h": await _add(stack, "sunqi", "王强", local(17, 10)),
         "e": await _add(stack, "chenjing", "许晴", local(20, 9)),
         "f": await _add(stack, "lina", "李华", local(23, 1))}
    await _order(stack, "WK-0", c["a"], 10000, local(12, 20), "lina")
    await _deleted_by_customer(stack, "lina", c["a"], local(21, 15))
    await _order(stack, "WK-1", c["b"], 2605, local(19, 20), "lina")
    await _order(stack, "WK-2", c["c"], 10000, local(21, 10), "lina")
    await _order(stack, "WK-3", c["d"], 5000, local(22, 18), "wangfang")
    await _order(stack, "WK-4", c["g"], 3000, local(16, 12), "zhaoli")
    await _order(stack, "WK-5", c["h"], 100, local(22, 23, 30), "sunqi")
    await _order(stack, "WK-6", c["h"], 99900, local(23, 0, 30), "sunqi")

    services.sop.clock = lambda: local(22, 13)
    for customer, guide in (("b", "lina"), ("c", "lina"), ("d", "wangfang")):
        status, body = await stack.admin("/sops/wk_task/enroll", method="POST", json={
            "external_userid": c[customer], "guide": guide})
        assert status == 201, body
    services.sop.clock = lambda: local(22, 13, 5)
    await services.sop.tick("acme")
    _, tasks = await stack.admin("/tasks")
    assert sorted((t["guide"], t["status"]) for t in tasks["tasks"]
                  if t["kind"] == "guide_task") == [
        ("lina", "sent"), ("wangfang", "sent")]  # lina's two customers in one 群发
    status, body = await stack.admin("/targets/2026-11", method="PUT", json={
        "stores": {"S01": {"adds": 10, "gmv_fen": 50000}}})
    assert status == 200, body


def _sent(stack: Stack, manager: str | None = None) -> list[tuple[str, str]]:
    """(touser, text) of every weekly report message/send WeCom accepted, in order."""
    head = TEXTS["weekly_header"].format(store="", start="", end="")[:5]  # " 店长周报（"
    found = []
    for call in stack.calls("message/send"):
        body = call["body"]
        content = body.get("text", {}).get("content", "")
        if (call["errcode"] == 0 and head in content.split("\n")[0]
                and manager in (None, body["touser"])):
            found.append((body["touser"], content))
    return found


async def _rows(stack: Stack) -> list[tuple[str, str]]:
    async with stack.runtime.services.db.read() as s:
        stmt = select(OutboxItem).where(OutboxItem.kind == "manager_weekly")
        return sorted((r.key, r.status) for r in (await s.execute(stmt)).scalars())


async def _run(services: Services, at: datetime) -> None:
    services.weekly.clock = lambda: at
    await jobs.run_manager_weekly(services, "acme")


def _link(stack: Stack, store: str) -> str:
    url = f"{stack.settings.server.public_url}/m/acme?store={store}"
    return TEXTS["weekly_link"].format(url=url)


def s01(stack: Stack, *, empty: bool = False) -> str:
    """S01's report on the 16th–22nd after `_weeks`; `empty`: on a week with nothing."""
    t = TEXTS
    if empty:
        none = t["weekly_change_none"]
        return "\n".join([
            t["weekly_header"].format(store="静安嘉里中心店", start="2026-11-16",
                                      end="2026-11-22"),
            t["weekly_customers"].format(adds=0, deletions=0, net=0),
            t["weekly_orders"].format(orders=0, orders_change=none, gmv="¥0.00",
                                      gmv_change=none),
            _link(stack, "S01")])
    return "\n".join([
        t["weekly_header"].format(store="静安嘉里中心店", start="2026-11-16", end="2026-11-22"),
        t["weekly_customers"].format(adds=5, deletions=1, net=4),
        t["weekly_orders"].format(
            orders=5, orders_change=t["weekly_change"].format(change="+400%"),
            gmv="¥207.05", gmv_change=t["weekly_change"].format(change="+107%")),
        t["weekly_top"].format(n=3, guides=t["weekly_top_sep"].join([
            t["weekly_top_guide"].format(name="李娜", gmv="¥126.05", adds=2),
            t["weekly_top_guide"].format(name="王芳", gmv="¥50.00", adds=1),
            t["weekly_top_guide"].format(name="赵丽", gmv="¥30.00", adds=1)])),
        t["weekly_pending"].format(guides=t["weekly_pending_sep"].join([
            t["weekly_pending_guide"].format(name="李娜", count=1),
            t["weekly_pending_guide"].format(name="王芳", count=1)])),
        t["weekly_target"].format(period="2026-11", date="2026-11-22", goals=t[
            "weekly_target_sep"].join([
                t["weekly_target_adds"].format(progress="6 / 10 · 60%"),
                t["weekly_target_gmv"].format(progress="¥307.05 / ¥500.00 · 61%")])),
        _link(stack, "S01")])


def s02(stack: Stack) -> str:
    t = TEXTS
    none = t["weekly_change_none"]
    return "\n".join([
        t["weekly_header"].format(store="徐汇日月光店", start="2026-11-16", end="2026-11-22"),
        t["weekly_customers"].format(adds=1, deletions=0, net=1),
        t["weekly_orders"].format(orders=0, orders_change=none, gmv="¥0.00",
                                  gmv_change=none),
        _link(stack, "S02")])


async def test_each_manager_hears_each_store_once(stack: Stack, aiohttp_server: Any) -> None:
    services = stack.runtime.services
    await _weeks(stack)

    await _run(services, local(23, 8, 59))  # Monday, before the time: nothing yet
    assert _sent(stack) == [] and await _rows(stack) == []

    await _run(services, local(23, 9, 30))
    assert sorted(_sent(stack)) == sorted([("boss2", s02(stack)), ("duo", s01(stack)),
                                           ("duo", s02(stack)), ("mgr1", s01(stack))])
    assert s01(stack).split("\n")[:3] == [  # the texts as a manager reads them
        "静安嘉里中心店 店长周报（2026-11-16 至 2026-11-22）：",
        "· 新增客户 5 位，被客户删除 1 位，净增 4 位",
        "· 成交 5 笔（较上周 +400%），成交额 ¥207.05（较上周 +107%）"]
    assert _sent(stack, "lina") == []  # guides hear no report
    keys = [(f"weekly:{m}:{s}:2026-11-16", "done")
            for m, s in (("boss2", "S02"), ("duo", "S01"), ("duo", "S02"), ("mgr1", "S01"))]
    assert await _rows(stack) == keys

    # the job again, and another process (a restart) later that week: nothing more
    await _run(services, local(23, 9, 31))
    second = create_app(stack.settings, start_jobs=False, backoff=FAST_BACKOFF)
    await aiohttp_server(second)
    await _run(second[RUNTIME].services, local(26, 18))
    assert len(_sent(stack)) == 4 and await _rows(stack) == keys

    # the next week, both processes at once: one report per manager and store
    await asyncio.gather(_run(services, local(30, 9)),
                         _run(second[RUNTIME].services, local(30, 9)))
    later = _sent(stack)[4:]
    assert sorted(m for m, _ in later) == ["boss2", "duo", "duo", "mgr1"]
    header = TEXTS["weekly_header"].format(store="静安嘉里中心店", start="2026-11-23",
                                           end="2026-11-29")
    [(_, text)] = [x for x in later if x[0] == "mgr1"]
    assert text.split("\n")[:3] == [
        header, TEXTS["weekly_customers"].format(adds=1, deletions=0, net=1),  # 李华
        TEXTS["weekly_orders"].format(
            orders=1, orders_change=TEXTS["weekly_change"].format(change="-80%"),
            gmv="¥999.00", gmv_change=TEXTS["weekly_change"].format(change="+382%"))]
    assert len(await _rows(stack)) == 8


async def test_a_late_start_sends_the_weeks_report_but_never_a_past_weeks(
        aiohttp_server: Any, tmp_path: Path, db_url: str) -> None:
    """Set for Wednesday 18:00: on Monday the 23rd the report on the 9th–15th (due the 18th)
    is not sent late, nor the one on the 16th–22nd early; a process starting on Thursday the
    26th sends the 16th–22nd's."""
    stack = await _stack(aiohttp_server, tmp_path, db_url,
                         '\n[tenants.acme.alerts]\nmanager_weekly = "wed 18:00"\n')
    try:
        await _add(stack, "chenjing", "许晴", local(20, 9))
        await _run(stack.runtime.services, local(23, 10))
        await _run(stack.runtime.services, local(25, 17, 59))
        assert _sent(stack) == [] and await _rows(stack) == []
        await _run(stack.runtime.services, local(26, 8))
        assert len(_sent(stack)) == 4 and ("duo", s02(stack)) in _sent(stack)
        assert _sent(stack, "mgr1")[0][1].split("\n")[1] == TEXTS["weekly_customers"].format(
            adds=0, deletions=0, net=0)
        assert [k for k, _ in await _rows(stack)] == [
            "weekly:boss2:S02:2026-11-16", "weekly:duo:S01:2026-11-16",
            "weekly:duo:S02:2026-11-16", "weekly:mgr1:S01:2026-11-16"]
    finally:
        await stack.http.close()


async def test_off_unless_configured(aiohttp_server: Any, tmp_path: Path, db_url: str) -> None:
    for extra in ("", '\n[tenants.acme.alerts]\nmanager_weekly = ""\n'):
        stack = await _stack(aiohttp_server, tmp_path / str(len(extra)), db_url, extra)
        try:
            assert stack.tenant().alerts.manager_weekly is None
            await _add(stack, "lina", "张晓雨", local(17, 12))
            for at in (local(23, 9), local(26, 23, 59), local(29, 23, 59)):
                await _run(stack.runtime.services, at)
            assert _sent(stack) == [] and await _rows(stack) == []
        finally:
            await stack.http.close()


async def test_five_waiting_guides_are_named_then_how_many_in_all(
        aiohttp_server: Any, tmp_path: Path, db_url: str) -> None:
    """Seven guides of S01 with 群发 tasks waiting (most first, then by userid); a stopped
    or confirmed task is not waiting."""
    from guidebot.db.repo import sop_tasks as tasks_repo

    names = {f"g{n}": f"导购{n}" for n in range(1, 8)}
    directory = {**DIRECTORY, "members": [
        {"userid": u, "name": n, "department": [2]} for u, n in names.items()]}
    stack = await _stack(aiohttp_server, tmp_path, db_url, directory=directory)
    try:
        async with stack.runtime.services.db.write() as s:
            for n, guide in enumerate(names, start=1):
                for k in range(8 - n if n <= 2 else 1):  # g1: 7, g2: 6, the others 1
                    await tasks_repo.insert_task(
                        s, now=local(20, 8), tenant="acme", key=f"{guide}-{k}",
                        kind="guide_task", source="drop:x", guide=guide, message="m",
                        recipients=1, status="sent")
            for key, status, stopped in (("s1", "sent", local(20, 9)),
                                         ("s2", "confirmed", None)):
                await tasks_repo.insert_task(
                    s, now=local(20, 8), tenant="acme", key=key, kind="guide_task",
                    source="drop:x", guide="g1", message="m", recipients=1, status=status,
                    stopped_at=stopped)
        await _run(stack.runtime.services, local(23, 9))
        [(_, text)] = _sent(stack, "mgr1")
        t = TEXTS
        named = t["weekly_pending_sep"].join(
            t["weekly_pending_guide"].format(name=names[g], count=c)
            for g, c in (("g1", 7), ("g2", 6), ("g3", 1), ("g4", 1), ("g5", 1)))
        line = t["weekly_pending"].format(guides=named + t["weekly_pending_more"].format(n=7))
        assert line in text.split("\n")
        assert line.endswith("导购5 1 项等 7 人")
    finally:
        await stack.http.close()


async def _unknown_on_console(stack: Stack, *, html: bool = False) -> list[str]:
    """The stores.toml managers the console's stores page lists as unknown to the address
    book (their userids; with `html`, the list's markup)."""
    console = Console(stack)
    try:
        await console.login("acme", "acme-admin-token")
        status, page, _ = await console.get("/console/acme/stores")
    finally:
        await console.close()
    assert status == 200
    found = re.search(r'<section class="notice" role="status" id="unknown-managers">(.*?)'
                      r'</section>', page, re.S)
    if found is None:
        return []
    return [found[1]] if html else re.findall(r'data-manager="([^"]+)"', found[1])


async def test_a_week_with_no_manager_yet_is_tried_again_within_it(
        aiohttp_server: Any, tmp_path: Path, db_url: str) -> None:
    """The address book names no leader yet and stores.toml's managers are no members yet:
    Monday's scans send nothing and do not close the week; once the sync knows them, the
    next scan that week sends each report, and nothing more afterwards (this process, or
    another one)."""
    bare = {**DIRECTORY, "members": [m for m in DIRECTORY["members"] if m not in MANAGERS],
            "departments": [{k: v for k, v in d.items() if k != "department_leader"}
                            for d in DIRECTORY["departments"]]}
    stack = await _stack(aiohttp_server, tmp_path, db_url, directory=bare)
    services = stack.runtime.services
    try:
        await _add(stack, "chenjing", "许晴", local(20, 9))
        for minute in (0, 1):
            await _run(services, local(23, 9, minute))
            assert _sent(stack) == [] and await _rows(stack) == []
        assert await _unknown_on_console(stack) == ["boss2", "duo"]

        async with stack.http.post(f"{stack.sandbox_url}/_sandbox/acme/directory",
                                   json=DIRECTORY) as resp:
            assert resp.status == 200, await resp.text()
        await stack.runtime.drain()
        await services.directory.sync("acme")
        await _run(services, local(23, 9, 2))
        assert sorted(_sent(stack)) == sorted([("boss2", s02(stack)), ("duo", s02(stack))]
                                              + [(m, s01(stack, empty=True))
                                                 for m in ("duo", "mgr1")])
        assert await _unknown_on_console(stack) == []

        await _run(services, local(23, 9, 3))
        second = create_app(stack.settings, start_jobs=False, backoff=FAST_BACKOFF)
        await aiohttp_server(second)
        await _run(second[RUNTIME].services, local(25, 12))
        assert len(_sent(stack)) == 4 and len(await _rows(stack)) == 4
    finally:
        await stack.http.close()


async def test_a_stores_toml_manager_unknown_to_the_address_book_or_gone_gets_nothing(
        aiohttp_server: Any, tmp_path: Path, db_url: str,
        caplog: pytest.LogCaptureFixture) -> None:
    """boss2 (stores.toml, S02) is no member; duo (a leader of S02, stores.toml's S01) left.
    Only mgr1 hears about S01; the two are logged by userid and listed on the console's
    stores page."""
    directory = {**DIRECTORY, "members": [m for m in DIRECTORY["members"]
                                          if m["userid"] != "boss2"]}
    stack = await _stack(aiohttp_server, tmp_path, db_url, directory=directory)
    services = stack.runtime.services
    try:
        await services.directory.sync("acme")
        async with stack.http.post(f"{stack.sandbox_url}/_sandbox/acme/directory",
                                   json={"delete_members": ["duo"]}) as resp:
            assert resp.status == 200, await resp.text()
        await stack.runtime.drain()
        with caplog.at_level(logging.WARNING, logger="guidebot.workbench.weekly"):
            await _run(services, local(23, 9, 30))
        assert _sent(stack) == [("mgr1", s01(stack, empty=True))]
        assert await _rows(stack) == [("weekly:mgr1:S01:2026-11-16", "done")]
        warned = sorted(r.getMessage() for r in caplog.records
                        if r.name == "guidebot.workbench.weekly")
        assert warned == [
            "manager weekly tenant=acme manager=boss2 stores=S02: not a current member in "
            "the address book, no report",
            "manager weekly tenant=acme manager=duo stores=S01: not a current member in the "
            "address book, no report"]

        assert await _unknown_on_console(stack) == ["boss2", "duo"]
        assert '<li data-manager="duo">duo: 静安嘉里中心店 <small>S01</small></li>' in (
            await _unknown_on_console(stack, html=True))[0]
    finally:
        await stack.http.close()


@pytest.mark.parametrize(("value", "expected"), [
    ('"MON 09:00"', WeeklyAt(0, time(9, 0))), ('"sun  23:59"', WeeklyAt(6, time(23, 59))),
    ('" Fri 07:30 "', WeeklyAt(4, time(7, 30))), ('""', None)])
def test_the_weekly_time_is_a_weekday_and_a_time(tmp_path: Path, value: str,
                                                  expected: WeeklyAt | None) -> None:
    path = write_config(tmp_path, "sqlite+aiosqlite:///unused.db",
                        extra=f"\n[tenants.acme.alerts]\nmanager_weekly = {value}\n")
    assert load_settings(path).tenant("acme").alerts.manager_weekly == expected


@pytest.mark.parametrize(("value", "problem"), [
    ('"MONDAY 09:00"', 'must be a weekday and a time of day, "MON 09:00"'),
    ('"MON 9:00"', "got 'MON 9:00'"), ('"MON 24:00"', "got 'MON 24:00'"),
    ('"09:00"', "got '09:00'"), ('"MON"', "got 'MON'"), ("1", "must be a string")])
def test_a_bad_weekly_time_is_a_clear_config_error(tmp_path: Path, value: str,
                                                   problem: str) -> None:
    path = write_config(tmp_path, "sqlite+aiosqlite:///unused.db",
                        extra=f"\n[tenants.acme.alerts]\nmanager_weekly = {value}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.key == "tenants.acme.alerts.manager_weekly"
    assert problem in info.value.problem


def test_the_change_against_the_week_before() -> None:
    assert [change(a, b) for a, b in ((5, 1), (1, 5), (3, 3), (20705, 10000), (1, 3),
                                      (2, 3), (4, 0), (0, 0))] == [
        "+400%", "-80%", "+0%", "+107%", "-67%", "-33%", None, None]
