"""数据保留: handled inbox items older than `inbox_days` are deleted (never pending, leased or
failed ones, never the newest row), 微信客服 texts older than `kf_text_days` blanked with
their rows and figures kept, 操作日志 entries older than `audit_days` deleted (batched, one
tenant's only); the daily job, the CLI and its dry run."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import bindparam, select, text

from guidebot import retention as retention_job
from guidebot.cli import main
from guidebot.db.models_audit import AuditEntry
from guidebot.db.repo import inbox as inbox_repo
from guidebot.db.types import UTCDateTime, utcnow
from guidebot.errors import ConfigError
from guidebot.inbox import order_key, payload_digest
from guidebot.settings import load_settings
from tests.support.console import Console
from tests.support.kf import customer_writes, kf_rows, use_router
from tests.support.stack import Stack, start_stack, write_config
from tests.support.wecom import add_contact_xml, contact_event_xml


async def _fault(stack: Stack, path: str, errcode: int, times: int) -> None:
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/faults", json={
            "tenant": "acme", "path": path, "errcode": errcode, "times": times}) as resp:
        assert resp.status == 200, await resp.text()


async def _adds(stack: Stack, prefix: str, count: int, tenant: str = "acme") -> list[str]:
    """`count` real encrypted add callbacks, handled; their plaintexts."""
    xmls = [add_contact_xml(corp_id=stack.tenant(tenant).corp_id, guide="lina",
                            external_userid=f"wm{prefix}{i:03d}", create_time=int(time.time()))
            for i in range(count)]
    assert await asyncio.gather(*(stack.post_callback(x, tenant=tenant) for x in xmls)) \
        == [200] * count
    await stack.runtime.drain()
    return xmls


async def _leased_elsewhere(stack: Stack, payload: str) -> int:
    """An old item another (live) process holds: stored and leased in one transaction, so
    this process never claims it."""
    db = stack.runtime.services.db
    long_ago = utcnow() - timedelta(days=400)
    async with db.write() as s:
        ids = await inbox_repo.insert_new(
            await s.connection(), received_at=long_ago,
            items=[("acme", payload_digest(payload), payload, order_key(payload))])
        claimed = await inbox_repo.claim(s, owner="another-process", now=utcnow(),
                                         until=utcnow() + timedelta(days=3650), limit=1)
    assert [c.id for c in claimed] == list(ids.values())
    return claimed[0].id


async def _rows(stack: Stack, tenant: str = "acme") -> dict[int, Any]:
    return {r.id: r for r in await stack.inbox_rows(tenant)}


async def test_old_handled_inbox_items_are_deleted_and_nothing_else(stack: Stack) -> None:
    retention = stack.runtime.services.retention
    old = await _adds(stack, "OLD", 4)
    beta_old = await _adds(stack, "BETA", 1, tenant="beta")
    # a failed item (every externalcontact/get refused): the console's retry, kept
    known = (await _adds(stack, "EDIT", 1))[0]
    await _fault(stack, "externalcontact/get", 60011, 10)
    assert await stack.post_callback(contact_event_xml(
        "edit_external_contact", corp_id=stack.tenant().corp_id, guide="lina",
        external_userid="wmEDIT000", create_time=int(time.time()))) == 200
    await stack.runtime.drain()
    failed = [r.id for r in (await _rows(stack)).values() if r.outcome == "failed"]
    assert len(failed) == 1
    leased = await _leased_elsewhere(stack, "<xml><held>elsewhere</held></xml>")
    before_new = await _rows(stack)
    old_handled = sorted(i for i, r in before_new.items() if i not in (*failed, leased))
    assert len(old_handled) >= len(old) + 1 and all(  # the adds' follow-ups are items too
        before_new[i].processed_at is not None for i in old_handled)
    middle = utcnow()
    new = await _adds(stack, "NEW", 3)
    everything = await _rows(stack)
    recent = sorted(set(everything) - set(before_new))
    assert len(recent) >= len(new)

    # 30 days (the default) after `middle`: the items handled before it are too old
    later = middle + timedelta(days=30)
    dry = await retention.run("acme", now=later, dry_run=True)
    assert (dry.inbox_deleted, dry.kf_texts_blanked) == (len(old_handled), None)
    assert set(await _rows(stack)) == set(everything)  # a dry run deletes nothing
    pruned = await retention.run("acme", now=later)
    assert (pruned.inbox_deleted, pruned.kf_texts_blanked) == (len(old_handled), None)
    assert sorted(await _rows(stack)) == sorted([*failed, leased, *recent])
    assert len(await _rows(stack, "beta")) == 1  # another tenant's items are its own run's
    assert (await retention.run("acme", now=later)).inbox_deleted == 0

    # WeCom sends a recent callback again: still recognised, not stored or handled twice
    assert await stack.post_callback(new[0]) == 200
    await stack.runtime.drain()
    assert sorted(await _rows(stack)) == sorted([*failed, leased, *recent])
    assert known and old and beta_old

    # a year on: every handled item goes but the newest row (its id is never handed out
    # again), the failed and the leased stay
    pruned = await retention.run("acme", now=utcnow() + timedelta(days=365))
    newest = max(everything)
    assert pruned.inbox_deleted == len(recent) - 1
    assert sorted(await _rows(stack)) == sorted({*failed, leased, newest})


async def test_the_daily_job_runs_once_a_day(stack: Stack) -> None:
    retention = stack.runtime.services.retention
    await _adds(stack, "DAY", 2)
    count = len(await _rows(stack))
    first = utcnow() + timedelta(days=31)
    done = await retention.run_if_due("acme", now=first)
    assert done is not None and done.inbox_deleted == count - 1  # the newest row stays
    await _adds(stack, "DAY2", 2)
    assert await retention.run_if_due("acme", now=first + timedelta(hours=23)) is None
    again = await retention.run_if_due("acme", now=utcnow() + timedelta(days=60))
    assert again is not None and again.inbox_deleted is not None and again.inbox_deleted >= 2
    assert len(await _rows(stack)) == 1


async def test_kf_texts_are_blanked_and_the_figures_stay(
        aiohttp_server: Any, tmp_path: Path, db_url: str) -> None:
    stack = await start_stack(aiohttp_server, tmp_path, db_url, config_extra=(
        "[tenants.acme.retention]\nkf_text_days = 7\ninbox_days = 0\n"))
    console = Console(stack)
    try:
        retention = stack.runtime.services.retention
        use_router(stack)
        added = await stack.sandbox.simulate_add_contact("acme", userid="lina", name="张三")
        await stack.runtime.drain()
        customer = added["external_userid"]
        await customer_writes(stack, customer, "这款精华适合干皮吗")
        await customer_writes(stack, customer, "转人工")
        rows = await kf_rows(stack, customer)
        said = [r for r in rows if r.msgtype == "text"]
        assert [r.text for r in said] == ["这款精华适合干皮吗", "转人工"]
        kept = [(r.msgid, r.msgtype, r.status, r.route, r.reason, r.guide, r.send_time)
                for r in rows]
        events = {r.msgid: r.text for r in rows if r.msgtype != "text"}
        _, handoffs = await stack.admin("/handoffs?status=all")
        assert len(handoffs["items"]) == 1
        await console.login("acme", "acme-admin-token")
        page = f"/console/acme/customers/{customer}"
        before = _conversation(await console.get(page))
        assert len(before) == 2 and "这款精华适合干皮吗" in before[0]

        # six days on nothing is older than seven days; eight days on both texts are
        nothing = await retention.run("acme", now=utcnow() + timedelta(days=6))
        assert (nothing.inbox_deleted, nothing.kf_texts_blanked) == (None, 0)
        dry = await retention.run("acme", now=utcnow() + timedelta(days=8), dry_run=True)
        assert dry.kf_texts_blanked == 2
        assert [r.text for r in await kf_rows(stack, customer) if r.msgtype == "text"] \
            == ["这款精华适合干皮吗", "转人工"]
        pruned = await retention.run("acme", now=utcnow() + timedelta(days=8))
        assert (pruned.inbox_deleted, pruned.kf_texts_blanked) == (None, 2)

        rows = await kf_rows(stack, customer)
        assert [r.text for r in rows if r.msgtype == "text"] == ["", ""]
        assert {r.msgid: r.text for r in rows if r.msgtype != "text"} == events
        assert [(r.msgid, r.msgtype, r.status, r.route, r.reason, r.guide, r.send_time)
                for r in rows] == kept
        assert _still(await stack.admin("/handoffs?status=all")) == _still((200, handoffs))
        after = _conversation(await console.get(page))
        assert len(after) == 2 and "这款精华适合干皮吗" not in "".join(after)
        for was, now in zip(before, after, strict=True):
            assert "文字已过数据保留期" in now
            assert was.replace("这款精华适合干皮吗", "").replace("转人工", "") == \
                now.replace("[文字已过数据保留期，已清除]", "")
        assert (await retention.run("acme", now=utcnow() + timedelta(days=8))) \
            .kf_texts_blanked == 0
    finally:
        await console.close()
        await stack.http.close()


async def _audit_ats(stack: Stack, tenant: str) -> list[Any]:
    async with stack.runtime.services.db.read() as s:
        return list((await s.execute(select(AuditEntry.at).where(AuditEntry.tenant == tenant)
                                     .order_by(AuditEntry.at))).scalars())


async def test_old_audit_entries_are_deleted_in_batches_and_the_cli_says_so(
        aiohttp_server: Any, tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    stack = await start_stack(aiohttp_server, tmp_path, db_url, config_extra=(
        "[tenants.acme.retention]\naudit_days = 30\n"))
    try:
        retention = stack.runtime.services.retention
        # real entries: HQ's changes over the admin API, in acme and in beta
        for tenant in ("acme", "beta"):
            for i in range(3):
                status, body = await stack.admin("/channels", tenant=tenant, method="POST",
                                                 json={"guide": "lina", "store": "S01",
                                                       "key": f"audit-{i}"})
                assert status == 201, body
        acme, beta = await _audit_ats(stack, "acme"), await _audit_ats(stack, "beta")
        assert len(acme) == len(beta) == 3
        newest = acme[-1]

        # 29 days after the newest entry nothing is older than 30 days
        assert (await retention.run("acme", now=newest + timedelta(days=29))) \
            .audit_deleted == 0
        later = newest + timedelta(days=31)
        dry = await retention.run("acme", now=later, dry_run=True)
        assert (dry.inbox_deleted, dry.kf_texts_blanked, dry.audit_deleted) == (0, None, 3)
        assert await _audit_ats(stack, "acme") == acme  # a dry run deletes nothing
        monkeypatch.setattr(retention_job, "BATCH", 2)  # two batches: 2, then 1
        pruned = await retention.run("acme", now=later)
        assert pruned.audit_deleted == 3
        assert await _audit_ats(stack, "acme") == []
        assert await _audit_ats(stack, "beta") == beta  # beta keeps its entries forever
        assert (await retention.run("beta", now=later)).audit_deleted is None

        # the CLI, at the real now: an entry made 40 days old goes, a fresh one stays
        await stack.admin("/channels", method="POST", json={"guide": "lina", "store": "S01"})
        await stack.admin("/channels", method="POST", json={"guide": "lina", "store": "S01"})
        async with stack.runtime.services.db.write() as s:
            first = (await s.execute(select(AuditEntry).where(AuditEntry.tenant == "acme")
                                     .order_by(AuditEntry.id))).scalars().first()
            assert first is not None
            first.at = utcnow() - timedelta(days=40)
        monkeypatch.delenv("GUIDEBOT_DATABASE_URL", raising=False)
        config = str(tmp_path / "config.toml")
        assert await asyncio.to_thread(
            main, ["retention", "run", "--tenant", "acme", "--config", config]) == 0
        assert capsys.readouterr().out.splitlines() == [
            "acme: handled inbox items deleted: 0 (older than 30 days); "
            "微信客服 texts blanked: kept forever (0 days); "
            "操作日志 entries deleted: 1 (older than 30 days); "
            "outbox texts blanked: kept forever (0 days)"]
        assert len(await _audit_ats(stack, "acme")) == 1
    finally:
        await stack.http.close()


def _still(answer: tuple[int, Any]) -> Any:
    """The handoffs' figures without how long the customer has waited so far (the clock's)."""
    status, body = answer
    assert status == 200
    return [{k: v for k, v in item.items() if k not in ("waited_s", "overdue")}
            for item in body["items"]]


def _conversation(answer: tuple[int, str, Any]) -> list[str]:
    status, html, _ = answer
    assert status == 200
    table = html[html.index('<table id="conversation">'):]
    return table[:table.index("</table>")].split("<tr data-msgid=")[1:]


async def _age_inbox(stack: Stack, ids: list[int], days: int) -> None:
    """Test helper: these items were handled `days` earlier (the CLI runs at the real now)."""
    aged = text("UPDATE inbox SET processed_at = :at WHERE id = :i").bindparams(
        bindparam("at", type_=UTCDateTime()))
    async with stack.runtime.services.db.write() as s:
        for item_id in ids:
            await s.execute(aged, {"at": utcnow() - timedelta(days=days), "i": item_id})


async def test_the_cli_runs_retention_now_and_its_dry_run_changes_nothing(
        stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GUIDEBOT_DATABASE_URL", raising=False)
    await _adds(stack, "CLI", 3)
    ids = sorted(await _rows(stack))
    await _age_inbox(stack, ids[:2], days=40)
    config = str(tmp_path / "config.toml")  # the stack's own config: the same database
    assert await asyncio.to_thread(
        main, ["retention", "run", "--dry-run", "--tenant", "acme", "--config", config]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "acme: handled inbox items would be deleted: 2 (older than 30 days); "
        "微信客服 texts would be blanked: kept forever (0 days); "
        "操作日志 entries would be deleted: kept forever (0 days); "
        "outbox texts would be blanked: kept forever (0 days)"]
    assert sorted(await _rows(stack)) == ids
    assert await asyncio.to_thread(main, ["retention", "run", "--config", config]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "acme: handled inbox items deleted: 2 (older than 30 days); "
        "微信客服 texts blanked: kept forever (0 days); "
        "操作日志 entries deleted: kept forever (0 days); "
        "outbox texts blanked: kept forever (0 days)",
        "beta: handled inbox items deleted: 0 (older than 30 days); "
        "微信客服 texts blanked: kept forever (0 days); "
        "操作日志 entries deleted: kept forever (0 days); "
        "outbox texts blanked: kept forever (0 days)"]
    assert sorted(await _rows(stack)) == ids[2:]
    assert await asyncio.to_thread(
        main, ["retention", "run", "--tenant", "nosuch", "--config", config]) == 2


def test_an_inbox_kept_one_day_is_refused_at_load(tmp_path: Path) -> None:
    path = write_config(tmp_path, "sqlite+aiosqlite:///./unused.db",
                        extra="[tenants.acme.retention]\ninbox_days = 1\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.key == "tenants.acme.retention.inbox_days"
    assert "must be 0 (keep forever) or from 2" in info.value.problem
