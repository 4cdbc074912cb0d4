"""会话质检 over HTTP with real encrypted kf callbacks through the sandbox: the words of
content_library/chat/watch_words.toml in what a customer writes (sync_msg origin 3) and in what
the servicer writes from the WeCom client (origin 5, the sandbox's simulate/kf_servicer_message)
are flagged once per message (a second read of the same messages adds nothing), a clean message
is not, an alert rule's flag sends one app message to each watch_notify member whatever runs
the job, and the console page and `GET …/chat/flags` show them to HQ; a tenant sees only its
own, and a tenant without watch_notify tells nobody.

The sandbox clock is put at a fixed instant before each message (their send_time), and the
page and the API are asked for that day: nothing depends on the time of day."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from guidebot import jobs, outbox
from guidebot.app import RUNTIME, create_app
from guidebot.chat.watch import KIND
from guidebot.check import _library
from guidebot.db.models_kf import KfCursor, KfFlag
from guidebot.db.repo import outbox as outbox_repo
from guidebot.settings import load_settings
from tests.support.console import Console
from tests.support.kf import KFID, control, customer_writes, kf_rows, use_router
from tests.support.stack import FAST_BACKOFF, Stack, library_copy, start_stack, write_config

T0 = datetime(2030, 3, 4, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai; after any real cursor
DAY = T0.astimezone(ZoneInfo("Asia/Shanghai")).date()
ROOT = Path(__file__).resolve().parents[2]
BETA_KF = "wkBETAshop00000000000001"
CONFIG = ('\n[tenants.acme.alerts]\nwatch_notify = ["hqboss", "hqqa"]\n'
          f'\n[tenants.beta.kf]\nopen_kfids = ["{BETA_KF}"]\n')


def at(stack: Stack, minutes: float) -> None:
    when = T0 + timedelta(minutes=minutes)
    stack.sandbox.clock_offset = when.timestamp() + 0.2 - time.time()


async def _guide_customer(stack: Stack, guide: str, name: str, tenant: str = "acme") -> str:
    added = await stack.sandbox.simulate_add_contact(tenant, userid=guide, name=name)
    await stack.runtime.drain()
    return str(added["external_userid"])


async def _servicer_writes(stack: Stack, customer: str, text: str) -> None:
    await control(stack, "simulate/kf_servicer_message",
                  {"open_kfid": KFID, "external_userid": customer, "text": text})
    await stack.runtime.drain()


async def _flags(stack: Stack, tenant: str = "acme") -> list[KfFlag]:
    async with stack.runtime.services.db.read() as s:
        return list((await s.execute(select(KfFlag).where(KfFlag.tenant == tenant)
                                     .order_by(KfFlag.id))).scalars())  # type: ignore[arg-type]


def _alerts(stack: Stack, member: str, tenant: str = "acme") -> list[str]:
    return [m["content"]["content"] for m in stack.sandbox.state(tenant)["app_messages"]
            if m["msgtype"] == "text" and m["userid"] == member]


async def _report(stack: Stack, query: str = "", tenant: str = "acme") -> Any:
    status, body = await stack.admin(f"/chat/flags?from={DAY}&to={DAY}{query}", tenant=tenant)
    assert status == 200, body
    return body


async def test_flagged_once_alerted_once_and_shown_to_hq(aiohttp_server: Any, tmp_path: Path,
                                                          db_url: str) -> None:
    stack = await start_stack(aiohttp_server, tmp_path, db_url, config_extra=CONFIG)
    try:
        use_router(stack)
        customer = await _guide_customer(stack, "lina", "孙悦")
        at(stack, 0)
        await customer_writes(stack, customer, "我要转人工")  # the session goes to lina
        at(stack, 1)
        await customer_writes(stack, customer, "再不处理我就打12315")
        at(stack, 2)
        await _servicer_writes(stack, customer, "您加我微信吧，私下转账给您返现")
        at(stack, 3)
        await _servicer_writes(stack, customer, "好的，马上为您处理")  # clean
        rows = await kf_rows(stack, customer)
        assert [r.origin for r in rows] == [3, 3, 5, 5]
        flags = await _flags(stack)
        assert [(f.msgid, f.origin, f.guide, f.rule, f.word, f.level, f.send_time,
                 f.external_userid, f.notified_at) for f in flags] == [
            (rows[1].msgid, 3, "lina", "投诉升级", "12315", "alert", rows[1].send_time,
             customer, None),
            (rows[2].msgid, 5, "lina", "私下交易", "私下转账", "alert", rows[2].send_time,
             customer, None)]
        # the same messages read again (the account's cursor reset, as a process reading
        # from the start would): stored and flagged once all the same
        async with stack.runtime.services.db.write() as s:
            await s.execute(update(KfCursor).values(cursor=""))
        at(stack, 4)
        await customer_writes(stack, customer, "好的谢谢")
        assert len(await kf_rows(stack, customer)) == 5
        assert [f.id for f in await _flags(stack)] == [f.id for f in flags]
        # the job: one app message per alert flag and member, and never a second
        before = len(stack.sandbox.state("acme")["app_messages"])
        await jobs.run_chat_watch(stack.runtime.services, "acme")
        boss = _alerts(stack, "hqboss")
        assert len(boss) == 2 and len(_alerts(stack, "hqqa")) == 2
        assert len(stack.sandbox.state("acme")["app_messages"]) == before + 4
        assert "孙悦" in boss[0] and "投诉升级" in boss[0] and "12315" in boss[0]
        assert "导购 lina" in boss[1] and "私下交易" in boss[1]
        assert "返现" not in boss[1]  # the message's own text is not repeated
        public = stack.runtime.services.settings.server.public_url
        assert f'href="{public}/console/acme/watch?from={DAY}&to={DAY}&rule={quote("投诉升级")}"' \
            in boss[0]  # the rule's name encoded in the link
        assert await stack.runtime.services.watch.notify("acme") == 0
        second = create_app(stack.settings, start_jobs=False, backoff=FAST_BACKOFF)
        await aiohttp_server(second)
        assert await second[RUNTIME].services.watch.notify("acme") == 0
        assert len(stack.sandbox.state("acme")["app_messages"]) == before + 4
        async with stack.runtime.services.db.read() as s:
            keys = sorted(r.key for r in await outbox_repo.list_items(s, tenant="acme",
                                                                       kind=KIND))
        assert keys == sorted(f"chat_watch:{m}:{f.id}" for m in ("hqboss", "hqqa")
                              for f in flags)
        assert all(f.notified_at is not None for f in await _flags(stack))
        # the admin API: counts per guide and rule, the messages with their text
        report = await _report(stack)
        assert report["total"] == 2 and report["guides"] == [{"guide": "lina", "flags": 2}]
        assert {r["rule"]: (r["level"], r["flags"]) for r in report["rules"]} == {
            "投诉升级": ("alert", 1), "私下交易": ("alert", 1)}
        assert [(i["writer"], i["word"], i["text"], i["customer_name"], i["is_contact"])
                for i in report["items"]] == [
            ("servicer", "私下转账", "您加我微信吧，私下转账给您返现", "孙悦", True),
            ("customer", "12315", "再不处理我就打12315", "孙悦", True)]
        only = await _report(stack, "&rule=私下交易")
        assert only["total"] == 1 and [i["msgid"] for i in only["items"]] == [rows[2].msgid]
        assert (await _report(stack, "&guide=wangfang"))["items"] == []
        earlier = DAY - timedelta(days=1)
        status, body = await stack.admin(f"/chat/flags?from={earlier}&to={earlier}")
        assert status == 200 and body["total"] == 0
        status, body = await stack.admin("/chat/flags?from=2030-03-05&to=2030-03-04")
        assert status == 400
        status, body = await stack.admin("/chat/flags?from=2030-3-4")
        assert status == 400 and body["field"] == "from"
        # the console page, both languages: the time in the tenant's zone, the customer's page
        console = Console(stack)
        try:
            await console.login("acme", "acme-admin-token")
            status, html, _ = await console.get(f"/console/acme/watch?from={DAY}&to={DAY}")
            assert status == 200 and "会话质检" in html
            row = html.split(f'data-msgid="{rows[2].msgid}"')[1].split("</tr>")[0]
            assert "2030-03-04 10:02:00" in row and "lina" in row and "私下交易" in row
            assert f'href="/console/acme/customers/{customer}"' in row and "孙悦" in row
            assert 'data-col="text">您加我微信吧，私下转账给您返现<' in row
            assert 'data-guide="lina"' in html and 'data-rule="投诉升级"' in html
            status, html, _ = await console.get(
                f"/console/acme/watch?from={DAY}&to={DAY}&rule=投诉升级")
            assert rows[1].msgid in html and rows[2].msgid not in html
            assert "<option selected>投诉升级</option>" in html and '<select id="guide"' in html
            kept = f'href="?{urlencode({"rule": "投诉升级"})}&amp;from='  # the quick ranges
            assert html.count(kept) == 5, html
            status, english, _ = await console.get(
                f"/console/acme/watch?from={DAY}&to={DAY}&lang=en")
            assert status == 200 and "Conversation watch" in english and "Flagged" in english
        finally:
            await console.close()
    finally:
        await stack.http.close()


async def test_tenants_apart_and_nobody_to_tell(aiohttp_server: Any, tmp_path: Path,
                                                db_url: str) -> None:
    stack = await start_stack(aiohttp_server, tmp_path, db_url, config_extra=CONFIG)
    try:
        use_router(stack)
        beta = await _guide_customer(stack, "zhaolei", "钱多", tenant="beta")
        at(stack, 0)
        await control(stack, "simulate/kf_message", {"open_kfid": BETA_KF,
                                                     "external_userid": beta,
                                                     "text": "我要去消协反映"}, tenant="beta")
        await stack.runtime.drain()
        [flag] = await _flags(stack, "beta")
        # the first word of the rule's list found; no servicer had the conversation
        assert (flag.rule, flag.word, flag.guide) == ("投诉升级", "消协", "")
        assert await _flags(stack) == []
        # beta has no watch_notify: nobody is told, and the flag is not looked at again
        assert await stack.runtime.services.watch.notify("beta") == 0
        assert stack.sandbox.state("beta")["app_messages"] == []
        assert all(f.notified_at is not None for f in await _flags(stack, "beta"))
        assert (await _report(stack))["total"] == 0
        beta_report = await _report(stack, tenant="beta")
        assert [i["external_userid"] for i in beta_report["items"]] == [beta]
        assert beta_report["guides"] == [{"guide": "", "flags": 1}]
        status, _ = await stack.admin(f"/chat/flags?from={DAY}&to={DAY}", tenant="beta",
                                      token="acme-admin-token")
        assert status == 403
    finally:
        await stack.http.close()


async def test_alerts_keep_to_the_app_message_budget(aiohttp_server: Any, tmp_path: Path,
                                                      db_url: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """With one app message a minute for a member, the second alert waits in the outbox for
    the next minute (held, not failed) and is sent then, once."""
    config = (CONFIG.replace('"hqboss", "hqqa"', '"hqboss"')
              + "\n[tenants.acme.quotas]\napp_msg_per_guide_per_min = 1\n")
    stack = await start_stack(aiohttp_server, tmp_path, db_url, config_extra=config)
    try:
        now = [T0 + timedelta(minutes=10)]
        stack.runtime.services.app_quota.clock = lambda: now[0]
        monkeypatch.setattr(outbox, "utcnow", lambda: now[0])
        use_router(stack)
        customer = await _guide_customer(stack, "lina", "孙悦")
        at(stack, 0)
        await customer_writes(stack, customer, "我要找消协")
        at(stack, 1)
        await customer_writes(stack, customer, "还要打12315")
        assert [f.rule for f in await _flags(stack)] == ["投诉升级", "投诉升级"]
        at(stack, 10)
        await jobs.run_chat_watch(stack.runtime.services, "acme")
        assert len(_alerts(stack, "hqboss")) == 1
        async with stack.runtime.services.db.read() as s:
            rows = await outbox_repo.list_items(s, tenant="acme", kind=KIND)
        held = [r for r in rows if r.status != "done"]
        assert len(rows) == 2 and len(held) == 1 and held[0].last_error.startswith("quota: ")
        services = stack.runtime.services
        assert await services.outbox.retry_due(services.calls) == 0  # not within the minute
        now[0] += timedelta(seconds=61)
        stack.sandbox.advance_clock(61)
        assert await services.outbox.retry_due(services.calls) == 1
        assert len(_alerts(stack, "hqboss")) == 2
        assert await services.watch.notify("acme") == 0
        assert await services.outbox.retry_due(services.calls) == 0
        assert len(_alerts(stack, "hqboss")) == 2
    finally:
        await stack.http.close()


def test_guidebot_check_reports_watch_words_with_file_and_line(tmp_path: Path,
                                                               sqlite_url: str) -> None:
    problems: list[str] = []
    fine = _library(load_settings(write_config(tmp_path, sqlite_url)), problems.append)
    assert problems == [] and fine is not None and "5 conversation watch rules" in fine
    shipped = (ROOT / "content_library/chat/watch_words.toml").read_text(encoding="utf-8")
    assert shipped == (ROOT / "guidebot/templates/chat/watch_words.toml").read_text(
        encoding="utf-8")
    broken = shipped + ('\n[[rules]]\nname = "私下交易"\napplies = ["guide"]\nlevel = "loud"\n'
                        'words = []\nwhy = 1\n')
    library = library_copy(tmp_path, {"chat/watch_words.toml": broken})
    checked = _library(load_settings(write_config(tmp_path, sqlite_url, library=library)),
                       problems.append)
    line = broken.count("\n") - 5
    where = f"{library}/chat/watch_words.toml:{line}"
    assert checked is None and problems == [
        f"{where}: rules: unknown key 'why'",
        f"{where}: rules: duplicate name '私下交易'",
        f"{where}: rules: words must be a non-empty list of non-empty strings",
        f'{where}: rules: applies must list "servicer" and/or "customer"',
        f"{where}: rules: level must be \"warn\" or \"alert\", got 'loud'"]
