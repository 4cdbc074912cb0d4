"""数据保留 of the outbox (`outbox_days`): the payloads of finished calls that carry a
message's words are blanked once they are old enough; the rows, their keys, states and times
stay, so usage metering and the console's pages are unchanged; pending rows, new rows, the
kinds whose payload is ids, and other tenants' rows are left alone; a dead row blanked is
refused a retry; the dry run counts and changes nothing."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from guidebot import retention as retention_job
from guidebot.cli import main
from guidebot.db.models import BLANKED_PAYLOAD, OutboxItem
from guidebot.db.types import utcnow
from tests.support.console import Console, csrf_in
from tests.support.kf import customer_writes, use_router
from tests.support.sidebar import sign_in
from tests.support.stack import Stack, start_stack

CONTACT = "change_external_contact"
RETENTION = ("[tenants.acme.retention]\noutbox_days = 7\n"
             "[tenants.beta.retention]\noutbox_days = 7\n")


async def _fault(stack: Stack, path: str, errcode: int, times: int) -> None:
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/faults", json={
            "tenant": "acme", "path": path, "errcode": errcode, "times": times}) as resp:
        assert resp.status == 200, await resp.text()


async def _add(stack: Stack, name: str, tenant: str = "acme") -> str:
    added = await stack.sandbox.simulate_add_contact(tenant, userid="lina", name=name)
    await stack.runtime.drain()
    return str(added["external_userid"])


async def _outbox(stack: Stack, tenant: str = "acme") -> dict[str, Any]:
    """The tenant's outbox rows by key, each as a plain tuple of what it holds."""
    async with stack.runtime.services.db.read() as s:
        rows = (await s.execute(select(OutboxItem).where(OutboxItem.tenant == tenant)
                                .order_by(OutboxItem.id))).scalars().all()
        return {r.key: (r.id, r.kind, r.status, r.attempts, r.result, r.last_error,
                        r.created_at, r.updated_at, r.due_at, r.payload) for r in rows}


def _said(payload: str) -> str:
    """A payload's words as written (payloads are stored with non-ASCII escaped)."""
    return json.dumps(json.loads(payload), ensure_ascii=False)


def _without_payload(rows: dict[str, Any]) -> dict[str, Any]:
    return {k: v[:-1] for k, v in rows.items()}


def _table(html: str, table: str) -> str:
    found = re.search(rf'<table id="{table}">.*?</table>', html, re.S)
    return found.group(0) if found else ""


async def _handoff_texts(stack: Stack, url: str) -> list[str]:
    guide = await sign_in(stack, "lina")
    try:
        async with guide.http.get(url, allow_redirects=False) as resp:
            assert resp.status == 200
            html = await resp.text()
    finally:
        await guide.http.close()
    return re.findall(r'<span class="text">([^<]*)</span>', html)


async def test_old_finished_outbox_texts_are_blanked_and_every_figure_and_page_stays(
        aiohttp_server: Any, tmp_path: Path, db_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    stack = await start_stack(aiohttp_server, tmp_path, db_url, config_extra=RETENTION)
    console = Console(stack)
    try:
        retention = stack.runtime.services.retention
        use_router(stack)
        # sent: a welcome naming 孙悦, the bot's 微信客服 reply, the handoff notice naming her
        customer = await _add(stack, "孙悦")
        await customer_writes(stack, customer, "口红有色号推荐吗")
        await customer_writes(stack, customer, "我要转人工")
        [card] = [m for m in stack.sandbox.state("acme")["app_messages"]
                  if m["msgtype"] == "textcard"]
        handoff = f"{stack.bot_url}{urlsplit(card['content']['url']).path}"
        # a kind whose payload is ids: HQ marks a tag (pretags read its userid later)
        status, view = await stack.admin(f"/customers/{customer}/tags", method="POST",
                                         json={"guide": "lina", "add": ["新客"]})
        assert status == 200, view
        # dead: WeCom refuses 周婷's welcome for good (41051)
        await _fault(stack, "externalcontact/send_welcome_msg", 41051, 1)
        await _add(stack, "周婷")
        # pending: the 删人提醒 naming 郑佳怡 while message/send is busy (failed, due again)
        gone = await _add(stack, "郑佳怡")
        await _fault(stack, "message/send", -1, 10)
        answer = await stack.sandbox.simulate_event("acme", {
            "Event": CONTACT, "ChangeType": "del_follow_user", "UserID": "lina",
            "ExternalUserID": gone})
        assert answer["delivery"]["status"] == 200
        await stack.runtime.drain()
        await _add(stack, "韩梅梅", tenant="beta")  # beta's own welcome
        middle = utcnow()
        await asyncio.sleep(0.01)
        await _add(stack, "李华")  # a welcome after `middle`: new

        rows = await _outbox(stack)
        beta = await _outbox(stack, "beta")
        by_kind = {(v[1], v[2]) for v in rows.values()}
        assert {("welcome", "done"), ("welcome", "dead"), ("kf_send", "done"),
                ("kf_notify", "done"), ("mark_tag", "done"),
                ("churn_notify", "failed")} <= by_kind, by_kind
        named = {name: [k for k, v in rows.items() if name in _said(v[-1])]
                 for name in ("孙悦", "周婷", "郑佳怡", "李华")}
        assert all(named.values()), named
        [dead] = [k for k, v in rows.items() if v[2] == "dead"]
        [pending] = [k for k, v in rows.items() if v[2] == "failed"]
        [new] = named["李华"]
        old_texts = {k for k, v in rows.items() if v[1] in retention_job.OUTBOX_TEXT_KINDS
                     and v[2] in ("done", "dead", "expired") and k != new}
        assert {dead, *named["孙悦"], *named["周婷"]} <= old_texts
        assert pending not in old_texts and new not in old_texts
        kept = {k for k, v in rows.items() if k not in old_texts}
        assert any(rows[k][1] == "mark_tag" for k in kept)

        period = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
        status, usage = await stack.admin(f"/usage?period={period}")
        assert status == 200 and usage["messages"], usage
        await console.login("acme", "acme-admin-token")
        _, outbox_page, _ = await console.get("/console/acme/outbox")
        assert dead in _table(outbox_page, "dead") and pending in _table(outbox_page, "pending")
        replies = await _handoff_texts(stack, handoff)
        assert len(replies) == 3 and replies[0] == "口红有色号推荐吗"

        # six days after `middle` nothing finished seven days ago
        assert (await retention.run("acme", now=middle + timedelta(days=6))).outbox_blanked == 0
        later = middle + timedelta(days=7)
        dry = await retention.run("acme", now=later, dry_run=True)
        assert (dry.outbox_blanked, dry.kf_texts_blanked, dry.audit_deleted) == (
            len(old_texts), None, None)
        assert await _outbox(stack) == rows  # a dry run changes nothing
        monkeypatch.setattr(retention_job, "BATCH", 2)  # batches of two
        pruned = await retention.run("acme", now=later)
        assert pruned.outbox_blanked == len(old_texts)

        after = await _outbox(stack)
        assert {k for k, v in after.items() if v[-1] == BLANKED_PAYLOAD} == old_texts
        assert {k: v[-1] for k, v in after.items() if k in kept} == \
            {k: v[-1] for k, v in rows.items() if k in kept}  # pending, new, ids: as they were
        assert _without_payload(after) == _without_payload(rows)  # keys, states, times
        assert not any(n in _said(after[k][-1]) for k in old_texts
                       for n in ("孙悦", "周婷", "郑佳怡"))
        assert "郑佳怡" in _said(after[pending][-1]) and "李华" in _said(after[new][-1])
        assert await _outbox(stack, "beta") == beta  # another tenant's rows: its own run's
        assert (await retention.run("acme", now=later)).outbox_blanked == 0

        # what counts is unchanged: usage metering, the console's outbox page
        assert await stack.admin(f"/usage?period={period}") == (200, usage)
        _, page_after, _ = await console.get("/console/acme/outbox")
        for table in ("dead", "pending", "tasks"):
            assert _table(page_after, table) == _table(outbox_page, table)
        # the handoff page: the bot's reply is shown removed, the customer's texts stay
        assert await _handoff_texts(stack, handoff) == [
            replies[0], "[文字已过数据保留期，已清除]", replies[2]]

        # the dead welcome's words are gone: its retry is refused, worded, and it stays dead
        status, html, _ = await console.post(
            f"/console/acme/outbox/{rows[dead][0]}/retry", {"_csrf": csrf_in(page_after)})
        assert status == 409 and "文字已过数据保留期" in html, html
        assert (await _outbox(stack))[dead] == after[dead]

        # beta's run blanks beta's old welcome, and nothing of acme's
        assert (await retention.run("beta", now=later)).outbox_blanked == 1
        assert [v[-1] for v in (await _outbox(stack, "beta")).values()
                if v[1] == "welcome"] == [BLANKED_PAYLOAD]
        assert await _outbox(stack) == after
    finally:
        await console.close()
        await stack.http.close()


async def test_a_dead_row_of_a_kept_kind_is_still_retried(
        aiohttp_server: Any, tmp_path: Path, db_url: str) -> None:
    """Kinds whose payload is ids are never blanked: the console's retry still sends them."""
    stack = await start_stack(aiohttp_server, tmp_path, db_url, config_extra=RETENTION)
    console = Console(stack)
    try:
        customer = await _add(stack, "孙悦")
        await _fault(stack, "externalcontact/mark_tag", 40068, 1)  # invalid tag: not retried
        status, _ = await stack.admin(f"/customers/{customer}/tags", method="POST",
                                      json={"guide": "lina", "add": ["新客"]})
        [dead] = [(k, v) for k, v in (await _outbox(stack)).items() if v[2] == "dead"]
        assert dead[1][1] == "mark_tag", dead
        pruned = await stack.runtime.services.retention.run(
            "acme", now=utcnow() + timedelta(days=30))
        assert pruned.outbox_blanked is not None and pruned.outbox_blanked >= 1  # the welcome
        assert (await _outbox(stack))[dead[0]] == dead[1]
        await console.login("acme", "acme-admin-token")
        _, html, _ = await console.get("/console/acme/outbox")
        status, _, _ = await console.post(f"/console/acme/outbox/{dead[1][0]}/retry",
                                          {"_csrf": csrf_in(html)})
        assert status == 303
        assert (await _outbox(stack))[dead[0]][2:4] == ("failed", 0)
    finally:
        await console.close()
        await stack.http.close()


async def test_every_outbox_kind_is_classified(stack: Stack) -> None:
    """A new kind must say whether its payload carries words (blanked) or ids (kept)."""
    text, kept = set(retention_job.OUTBOX_TEXT_KINDS), set(retention_job.OUTBOX_KEPT_KINDS)
    assert not text & kept
    assert set(stack.runtime.services.calls) == text | kept


async def test_the_cli_counts_outbox_texts_and_its_dry_run_changes_nothing(
        aiohttp_server: Any, tmp_path: Path, db_url: str,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    stack = await start_stack(aiohttp_server, tmp_path, db_url, config_extra=RETENTION)
    try:
        await _add(stack, "孙悦")
        [(key, row)] = [(k, v) for k, v in (await _outbox(stack)).items()
                        if v[1] == "welcome"]
        async with stack.runtime.services.db.write() as s:  # finished ten days ago
            item = await s.get(OutboxItem, row[0])
            assert item is not None
            item.updated_at = utcnow() - timedelta(days=10)
        monkeypatch.delenv("GUIDEBOT_DATABASE_URL", raising=False)
        config = str(tmp_path / "config.toml")
        before = await _outbox(stack)
        assert await asyncio.to_thread(
            main, ["retention", "run", "--dry-run", "--tenant", "acme", "--config", config]) == 0
        assert capsys.readouterr().out.splitlines() == [
            "acme: handled inbox items would be deleted: 0 (older than 30 days); "
            "微信客服 texts would be blanked: kept forever (0 days); "
            "操作日志 entries would be deleted: kept forever (0 days); "
            "outbox texts would be blanked: 1 (older than 7 days)"]
        assert await _outbox(stack) == before
        assert await asyncio.to_thread(
            main, ["retention", "run", "--tenant", "acme", "--config", config]) == 0
        assert capsys.readouterr().out.splitlines()[0].endswith(
            "outbox texts blanked: 1 (older than 7 days)")
        assert (await _outbox(stack))[key][-1] == BLANKED_PAYLOAD
    finally:
        await stack.http.close()
