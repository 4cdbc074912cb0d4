"""员工删人提醒: a guide deleting a customer (del_external_contact, delivered by the sandbox as a
real encrypted callback) gets each member of `[tenants.<id>.alerts] guide_deleted_notify` one
app message naming the guide and their store, the customer, the day the guide added them (the
tenant's time zone) and the orders credited to the guide; WeCom delivering the callback again
sends nothing more; a transfer's handover, a customer deleting the guide and an empty list send
nothing to them. The console's 员工删人记录 lists the deletion, to its own tenant only."""

from __future__ import annotations

import re
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from guidebot.db.models import OutboxItem
from guidebot.db.repo import contacts as contacts_repo
from guidebot.errors import ConfigError
from guidebot.settings import load_settings
from tests.scenario.test_churn_alert import _add, _contact_event
from tests.support.commerce import paid, post_settled
from tests.support.console import Console
from tests.support.stack import ROOT, Stack, start_stack, write_config

TEXTS = tomllib.loads((ROOT / "content_library/chat/texts.toml").read_text(encoding="utf-8"))
CONTACT = "change_external_contact"
MEMBERS = ("zhangmin", "hq01")
ON = '\n[tenants.acme.alerts]\nguide_deleted_notify = ["zhangmin", "hq01", "zhangmin"]\n'


async def _stack(aiohttp_server: Any, tmp_path: Path, db_url: str, extra: str = ON) -> Stack:
    return await start_stack(aiohttp_server, tmp_path, db_url, config_extra=extra)


def _to_members(stack: Stack) -> list[dict[str, Any]]:
    return [m for m in stack.sandbox.state("acme")["app_messages"] if m["userid"] in MEMBERS]


async def _rows(stack: Stack) -> list[OutboxItem]:
    async with stack.runtime.services.db.read() as s:
        stmt = select(OutboxItem).where(OutboxItem.kind == "guide_deleted_notify")
        return list((await s.execute(stmt)).scalars())


async def _guide(stack: Stack, userid: str) -> tuple[str, str]:
    async with stack.runtime.services.db.read() as s:
        names = await contacts_repo.guide_names(s, tenant="acme", userids=[userid])
    return names[userid]


async def test_each_listed_member_is_told_once_per_deletion(
        aiohttp_server: Any, tmp_path: Path, db_url: str) -> None:
    stack = await _stack(aiohttp_server, tmp_path, db_url)
    try:
        assert stack.tenant().alerts.guide_deleted_notify == MEMBERS
        assert stack.tenant("beta").alerts.guide_deleted_notify == ()
        # 17:00 UTC ten days ago: 01:00 the next day in Shanghai, so the date shows the zone
        at = (datetime.now(UTC) - timedelta(days=10)).replace(hour=17, minute=0, second=0,
                                                                microsecond=0)
        customer = await _add(stack, "lina", "张晓雨", at)
        for order_no, fen in (("GD-1", 123_400), ("GD-2", 2_605)):
            items = [{"sku": "SKU1", "category": "beauty", "quantity": 1, "amount_fen": fen}]
            status, body = await post_settled(stack, paid(order_no, customer=customer,
                                                          items=items))
            assert status == 200 and body["guide"] == "lina", body
        answer = await stack.sandbox.simulate_event("acme", {
            "Event": CONTACT, "ChangeType": "del_external_contact", "UserID": "lina",
            "ExternalUserID": customer}, deliver=False)
        for _ in range(2):  # WeCom's retry: the same payload, newly encrypted and signed
            assert await stack.post_callback(answer["xml"]) == 200
        await stack.runtime.drain()
        name, store = await _guide(stack, "lina")
        added = (at + timedelta(hours=8)).date().isoformat()
        assert added != at.date().isoformat()
        expected = TEXTS["guide_deleted_notice"].format(
            guide=name or "lina", store=store or TEXTS["guide_deleted_no_store"],
            customer="张晓雨", added=added,
            orders=TEXTS["guide_deleted_orders"].format(count=2, amount="¥1,260.05"))
        messages = _to_members(stack)
        assert sorted(m["userid"] for m in messages) == sorted(MEMBERS)
        assert {m["content"]["content"] for m in messages} == {expected}
        assert sorted(r.status for r in await _rows(stack)) == ["done", "done"]
        # nothing to the guide who deleted (that is the customer-side 删人提醒 only)
        assert [m for m in stack.sandbox.state("acme")["app_messages"]
                if m["userid"] == "lina"] == []
    finally:
        await stack.http.close()


async def test_a_transfer_and_a_customer_deleting_the_guide_tell_no_member(
        aiohttp_server: Any, tmp_path: Path, db_url: str) -> None:
    stack = await _stack(aiohttp_server, tmp_path, db_url)
    try:
        moved = await _add(stack, "lina", "李华")
        await _add(stack, "zhaolei", "李华")  # the takeover guide
        left = await _add(stack, "lina", "韩梅梅")
        await _contact_event(stack, "del_external_contact", "lina", moved,
                             Source="DELETE_BY_TRANSFER")
        await _contact_event(stack, "del_follow_user", "lina", left)
        assert _to_members(stack) == []
        assert await _rows(stack) == []
        unnamed = "wmNEVERSEEN02"  # a relation never seen added: named by external_userid
        await _contact_event(stack, "del_external_contact", "zhaolei", unnamed)
        [message] = _to_members(stack)[:1]
        assert "wmNEVERSEEN02" in message["content"]["content"]
        assert TEXTS["churn_added_unknown"] in message["content"]["content"]
        assert TEXTS["guide_deleted_no_orders"] in message["content"]["content"]
    finally:
        await stack.http.close()


async def test_an_empty_list_tells_nobody(stack: Stack) -> None:
    assert stack.tenant().alerts.guide_deleted_notify == ()
    customer = await _add(stack, "lina", "周婷")
    before = len(stack.sandbox.state("acme")["app_messages"])
    await _contact_event(stack, "del_external_contact", "lina", customer)
    assert stack.sandbox.state("acme")["app_messages"][before:] == []
    assert await _rows(stack) == []


@pytest.mark.parametrize("value", ['"zhangmin"', '[""]', "[1]"])
def test_a_list_that_is_not_userids_is_a_configuration_error(
        tmp_path: Path, sqlite_url: str, value: str) -> None:
    path = write_config(tmp_path, sqlite_url,
                        extra=f"\n[tenants.acme.alerts]\nguide_deleted_notify = {value}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.key == "tenants.acme.alerts.guide_deleted_notify"


async def test_the_console_lists_the_deletion_to_its_tenant_only(stack: Stack) -> None:
    """员工删人记录: the guide's deletion with the orders credited, a link to the customer and
    the CSV; a transfer and a customer's deletion are not listed; beta's session is refused."""
    customer = await _add(stack, "lina", "张晓雨")
    items = [{"sku": "SKU1", "category": "beauty", "quantity": 1, "amount_fen": 8_800}]
    status, body = await post_settled(stack, paid("GD-9", customer=customer, items=items))
    assert status == 200 and body["guide"] == "lina", body
    moved = await _add(stack, "lina", "李华")
    await _add(stack, "zhaolei", "李华")
    left = await _add(stack, "wangfang", "韩梅梅")
    await _contact_event(stack, "del_external_contact", "lina", customer)
    await _contact_event(stack, "del_external_contact", "lina", moved,
                         Source="DELETE_BY_TRANSFER")
    await _contact_event(stack, "del_follow_user", "wangfang", left)
    acme, beta = Console(stack), Console(stack)
    try:
        assert (await acme.login("acme", "acme-admin-token")).status == 303
        assert (await beta.login("beta", "beta-admin-token")).status == 303
        status, html, _ = await acme.get("/console/acme/deletions")
        assert status == 200, html
        rows = re.findall(r'<tr data-guide="([^"]*)" data-customer="([^"]*)">(.*?)</tr>', html,
                          re.S)
        assert [(g, c) for g, c, _ in rows] == [("lina", customer)]
        cells = rows[0][2]
        assert f'href="/console/acme/customers/{customer}">张晓雨</a>' in cells
        assert re.search(r'data-col="orders">1<', cells) and "¥88.00" in cells
        status, text, resp = await acme.get("/console/acme/deletions?format=csv")
        assert status == 200 and resp.headers["Content-Type"].startswith("text/csv")
        lines = text.lstrip("\ufeff").splitlines()
        assert lines[0] == ("deleted_at,guide,guide_name,external_userid,customer_name,"
                            "orders,paid_fen")
        assert [line.split(",")[1:] for line in lines[1:]] == [
            ["lina", (await _guide(stack, "lina"))[0], customer, "张晓雨", "1", "8800"]]
        status, html, _ = await beta.get("/console/acme/deletions")
        assert status == 403 and customer not in html
        status, html, _ = await beta.get("/console/beta/deletions")
        assert status == 200 and customer not in html
    finally:
        await acme.close()
        await beta.close()
