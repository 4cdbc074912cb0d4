"""删人提醒: a customer deleting a guide (del_follow_user, delivered by the sandbox as a real
encrypted callback) gets that guide one app message naming the customer, the day they were
added (the tenant's time zone) and the orders credited to the guide; WeCom delivering the
callback again, or the inbox running it again, sends nothing more; the guide deleting the
customer sends nothing; `[tenants.<id>.alerts] customer_deleted = false` turns it off."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from guidebot import outbox
from guidebot.cli import main
from guidebot.db.models import OutboxItem
from guidebot.errors import ConfigError
from guidebot.routing import Context
from guidebot.settings import load_settings
from guidebot.wecom.parse import parse_event
from handlers.contacts import on_contact_deleted_by_customer
from tests.support.commerce import paid, post_settled
from tests.support.stack import ROOT, Stack, library_copy, start_stack, write_config

TEXTS = tomllib.loads((ROOT / "content_library/chat/texts.toml").read_text(encoding="utf-8"))
CONTACT = "change_external_contact"
OFF = "\n[tenants.acme.alerts]\ncustomer_deleted = false\n"


def _notice(customer: str, added: str, orders: str | None = None) -> str:
    return TEXTS["churn_notice"].format(customer=customer, added=added,
                                        orders=orders or TEXTS["churn_no_orders"])


def _added_at() -> datetime:
    """Ten days ago at 17:00 UTC: 01:00 the next day in Shanghai, so the date shows the zone."""
    return (datetime.now(UTC) - timedelta(days=10)).replace(hour=17, minute=0, second=0,
                                                            microsecond=0)


async def _add(stack: Stack, guide: str, name: str, at: datetime | None = None) -> str:
    added = await stack.sandbox.simulate_add_contact(
        "acme", userid=guide, name=name,
        create_time=int(at.timestamp()) if at is not None else None)
    await stack.runtime.drain()
    return str(added["external_userid"])


async def _contact_event(stack: Stack, change: str, guide: str, customer: str,
                         **extra: str) -> None:
    answer = await stack.sandbox.simulate_event("acme", {
        "Event": CONTACT, "ChangeType": change, "UserID": guide, "ExternalUserID": customer,
        **extra})
    assert answer["delivery"]["status"] == 200, answer["delivery"]
    await stack.runtime.drain()


def _messages(stack: Stack, guide: str | None = None) -> list[dict[str, Any]]:
    return [m for m in stack.sandbox.state("acme")["app_messages"]
            if guide is None or m["userid"] == guide]


async def _churn_rows(stack: Stack) -> list[OutboxItem]:
    async with stack.runtime.services.db.read() as s:
        stmt = select(OutboxItem).where(OutboxItem.kind == "churn_notify")
        return list((await s.execute(stmt)).scalars())


def _local_day(at: datetime) -> str:
    return (at + timedelta(hours=8)).date().isoformat()  # Asia/Shanghai, no DST


async def _status(stack: Stack, customer: str, guide: str) -> str:
    _, view = await stack.admin(f"/customers/{customer}")
    return {g["userid"]: g["status"] for g in view["guides"]}[guide]


async def test_the_guide_a_customer_deletes_gets_one_message_naming_them(
        stack: Stack) -> None:
    at = _added_at()
    customer = await _add(stack, "lina", "张晓雨", at)
    other = await _add(stack, "wangfang", "李雷")
    before = len(_messages(stack))
    await _contact_event(stack, "del_follow_user", "lina", customer)
    assert await _status(stack, customer, "lina") == "deleted_by_customer"
    added = _local_day(at)
    assert added != at.date().isoformat()
    [message] = _messages(stack)[before:]
    assert (message["userid"], message["msgtype"]) == ("lina", "text")
    assert message["content"]["content"] == _notice("张晓雨", added)
    assert "张晓雨" in message["content"]["content"] and added in message["content"]["content"]
    assert not message["dropped"]
    assert [(r.status, r.key.startswith("churn_notify:")) for r in await _churn_rows(stack)] \
        == [("done", True)]
    assert await _status(stack, other, "wangfang") == "active"


async def test_the_notice_counts_the_orders_credited_to_that_guide(stack: Stack) -> None:
    at = _added_at()
    customer = await _add(stack, "lina", "王强", at)
    for order_no, fen in (("CH-1", 123_400), ("CH-2", 2_605)):
        items = [{"sku": "SKU1", "category": "beauty", "quantity": 1, "amount_fen": fen}]
        status, body = await post_settled(stack, paid(order_no, customer=customer, items=items))
        assert status == 200 and body["guide"] == "lina", body
    before = len(_messages(stack, "lina"))
    await _contact_event(stack, "del_follow_user", "lina", customer)
    [message] = _messages(stack, "lina")[before:]
    orders = TEXTS["churn_orders"].format(count=2, amount="¥1,260.05")
    assert message["content"]["content"] == _notice("王强", _local_day(at), orders)


async def test_an_unnamed_customer_is_named_by_external_userid(stack: Stack) -> None:
    """A relation guidebot never saw added: the customer has no name and no add date."""
    await _contact_event(stack, "del_follow_user", "zhaolei", "wmNEVERSEEN01")
    [message] = _messages(stack, "zhaolei")
    assert message["content"]["content"] == _notice("wmNEVERSEEN01",
                                                    TEXTS["churn_added_unknown"])


async def test_the_same_callback_twice_and_a_second_run_send_one_message(
        stack: Stack) -> None:
    customer = await _add(stack, "lina", "周婷")
    before = len(_messages(stack, "lina"))
    answer = await stack.sandbox.simulate_event("acme", {
        "Event": CONTACT, "ChangeType": "del_follow_user", "UserID": "lina",
        "ExternalUserID": customer}, deliver=False)
    for _ in range(2):  # WeCom's retry: the same payload, newly encrypted and signed
        assert await stack.post_callback(answer["xml"]) == 200
    await stack.runtime.drain()
    assert len(_messages(stack, "lina")) == before + 1
    # The inbox running the stored item again (its process died before marking it done):
    [item] = [i for i in await stack.inbox_rows() if "del_follow_user" in i.payload]
    event = parse_event("acme", item.payload)
    await on_contact_deleted_by_customer(event, Context(stack.runtime.services, item.id))
    assert len(_messages(stack, "lina")) == before + 1
    assert len([c for c in stack.calls("message/send")
                if c["body"].get("touser") == "lina" and c["errcode"] == 0]) == before + 1


async def test_a_failed_send_is_retried_by_the_outbox(
        stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _added_at()
    customer = await _add(stack, "lina", "郑佳怡", at)
    before = len(_messages(stack, "lina"))
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/faults", json={
            "tenant": "acme", "path": "message/send", "errcode": -1, "times": 10}) as resp:
        assert resp.status == 200
    await _contact_event(stack, "del_follow_user", "lina", customer)
    assert len(_messages(stack, "lina")) == before
    assert await _status(stack, customer, "lina") == "deleted_by_customer"  # not rolled back
    [item] = [i for i in await stack.inbox_rows() if "del_follow_user" in i.payload]
    assert item.processed_at is not None and item.last_error == ""
    async with stack.http.delete(f"{stack.sandbox_url}/_sandbox/faults") as resp:
        assert resp.status == 200
    services = stack.runtime.services
    later = datetime.now(UTC) + timedelta(minutes=10)
    monkeypatch.setattr(outbox, "utcnow", lambda: later)
    assert await services.outbox.retry_due(services.calls) >= 1
    [message] = _messages(stack, "lina")[before:]
    assert message["content"]["content"] == _notice("郑佳怡", _local_day(at))
    assert [(r.status, r.attempts) for r in await _churn_rows(stack)] == [("done", 2)]
    assert await services.outbox.retry_due(services.calls) == 0
    assert len(_messages(stack, "lina")) == before + 1


async def test_the_guide_deleting_the_customer_sends_nothing(stack: Stack) -> None:
    deleted = await _add(stack, "lina", "韩梅梅")
    moved = await _add(stack, "lina", "李华")
    await _add(stack, "zhaolei", "李华")  # the takeover guide of the transfer below
    before = len(_messages(stack))
    await _contact_event(stack, "del_external_contact", "lina", deleted)
    await _contact_event(stack, "del_external_contact", "lina", moved,
                         Source="DELETE_BY_TRANSFER")
    assert await _status(stack, deleted, "lina") == "deleted_by_guide"
    assert await _status(stack, moved, "lina") == "transferred"
    assert _messages(stack)[before:] == []
    assert await _churn_rows(stack) == []


async def test_customer_deleted_false_sends_nothing(
        aiohttp_server: Any, tmp_path: Path, db_url: str) -> None:
    stack = await start_stack(aiohttp_server, tmp_path, db_url, config_extra=OFF)
    try:
        assert stack.tenant().alerts.customer_deleted is False
        assert stack.tenant("beta").alerts.customer_deleted is True
        customer = await _add(stack, "lina", "张晓雨")
        before = len(_messages(stack))
        await _contact_event(stack, "del_follow_user", "lina", customer)
        assert await _status(stack, customer, "lina") == "deleted_by_customer"
        assert _messages(stack)[before:] == []
        assert await _churn_rows(stack) == []
    finally:
        await stack.http.close()


@pytest.mark.parametrize(("value", "got"), [('"yes"', "str"), ("1", "int")])
def test_a_value_that_is_not_true_or_false_is_a_configuration_error(
        tmp_path: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str], value: str,
        got: str) -> None:
    path = write_config(tmp_path, sqlite_url,
                        extra=f"\n[tenants.acme.alerts]\ncustomer_deleted = {value}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert (caught.value.key, caught.value.problem) == (
        "tenants.acme.alerts.customer_deleted", f"must be true or false, got {got}")
    assert main(["check", "--config", str(path)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"configuration error: {path}: tenants.acme.alerts.customer_deleted: "
        f"must be true or false, got {got}")


def test_guidebot_check_reports_a_broken_chat_text_with_its_line(
        tmp_path: Path, sqlite_url: str) -> None:
    """`guidebot check` loads the chat content too (words, texts, replies, FAQ): a notice
    naming a placeholder it does not have is found before `serve` would refuse to start.
    (The content part of the check alone: the whole check would also try to reach WeCom.)"""
    from guidebot.check import _library

    texts = (ROOT / "content_library/chat/texts.toml").read_text(encoding="utf-8")
    broken = texts.replace('churn_no_orders = "在您名下暂无成交"',
                           'churn_no_orders = "在您名下暂无成交 {gmv}"')
    assert broken != texts
    problems: list[str] = []
    fine = _library(load_settings(write_config(tmp_path, sqlite_url)), problems.append)
    assert problems == [] and fine is not None and "keyword replies" in fine
    library = library_copy(tmp_path, {"chat/texts.toml": broken})
    checked = _library(load_settings(write_config(tmp_path, sqlite_url, library=library)),
                       problems.append)
    line = broken[:broken.index("churn_no_orders")].count("\n") + 1
    assert checked is None and problems == [
        f"{library}/chat/texts.toml:{line}: churn_no_orders: unknown placeholder {{gmv}}"]
