"""互动雷达: a customer opening a card their guide sent (the visit beacon, signed by the store
backend, or any visit of a card made for that one customer) gets the guide one app message in
the WeCom sandbox naming the customer, the product and how often they opened the guide's
cards in the last 24 hours; one per guide and customer per window (30 minutes by default);
never for an anonymous click, a customer who no longer follows the guide, or a tenant with
`[tenants.<id>.alerts] card_opened = false`. The beacon answers 204 whatever WeCom does."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from guidebot import outbox
from guidebot.db.models import OutboxItem
from guidebot.db.models_commerce import Touch
from guidebot.errors import ConfigError
from guidebot.settings import load_settings
from tests.support.commerce import signed_visit
from tests.support.stack import ROOT, Stack, start_stack, write_config

TEXTS = tomllib.loads((ROOT / "content_library/chat/texts.toml").read_text(encoding="utf-8"))
SERUM, SERUM_NAME = "SKU-SERUM-02", "修护精华液 30ml"
# 02:01 UTC: a minute into a 30-minute (and a 60-minute) window
T0 = datetime(2026, 3, 2, 2, 1, tzinfo=UTC)


def _notice(customer: str, card: str, count: int) -> str:
    return TEXTS["radar_notice"].format(customer=customer, card=card, count=count)


async def _add(stack: Stack, guide: str, name: str) -> str:
    added = await stack.sandbox.simulate_add_contact("acme", userid=guide, name=name)
    await stack.runtime.drain()
    return str(added["external_userid"])


async def _link(stack: Stack, guide: str, sku: str = SERUM, **extra: str) -> str:
    status, link = await stack.admin("/links", method="POST",
                                     json={"guide": guide, "sku": sku, **extra})
    assert status == 201, link
    return str(link["token"])


async def _open(stack: Stack, token: str, at: datetime, customer: str | None = None,
                **query: str) -> None:
    """The mini-program's beacon at `at` (the app's clock set to it): signed for `customer`
    when given, else an unsigned click carrying `query`; then every event handled."""
    stack.runtime.services.commerce.clock = lambda: at
    params = (signed_visit(stack, token, external_userid=customer, ts=str(int(at.timestamp())))
              if customer is not None else query)
    async with stack.http.get(f"{stack.bot_url}/t/{token}", params=params) as resp:
        assert resp.status == 204
    await stack.runtime.drain()


def _messages(stack: Stack, guide: str) -> list[str]:
    return [m["content"]["content"] for m in stack.sandbox.state("acme")["app_messages"]
            if m["userid"] == guide and m["msgtype"] == "text"]


async def _rows(stack: Stack) -> list[OutboxItem]:
    async with stack.runtime.services.db.read() as s:
        stmt = (select(OutboxItem).where(OutboxItem.kind == "radar_notify")
                .order_by(OutboxItem.id))  # type: ignore[arg-type]
        return list((await s.execute(stmt)).scalars())


async def _touches(stack: Stack, token: str) -> list[tuple[str, str | None]]:
    async with stack.runtime.services.db.read() as s:
        rows = (await s.execute(select(Touch).where(Touch.token == token)
                                .order_by(Touch.id))).scalars()  # type: ignore[arg-type]
        return [(t.kind, t.external_userid) for t in rows]


async def test_a_signed_visit_tells_the_guide_once_per_window_with_the_24h_count(
        stack: Stack) -> None:
    customer = await _add(stack, "lina", "张晓雨")
    token = await _link(stack, "lina")
    before = _messages(stack, "lina")
    await _open(stack, token, T0 - timedelta(hours=25), customer)  # outside the next 24 h
    await _open(stack, token, T0, customer)
    assert _messages(stack, "lina")[len(before):] == [_notice("张晓雨", SERUM_NAME, 1),
                                                      _notice("张晓雨", SERUM_NAME, 1)]
    await _open(stack, token, T0 + timedelta(minutes=31), customer)  # the next window
    assert _messages(stack, "lina")[len(before) + 2:] == [_notice("张晓雨", SERUM_NAME, 2)]
    for minutes in (40, 55):  # 02:41, 02:56: the same window (02:30–03:00), no message
        await _open(stack, token, T0 + timedelta(minutes=minutes), customer)
    assert len(_messages(stack, "lina")) == len(before) + 3
    await _open(stack, token, T0 + timedelta(minutes=61), customer)  # 03:02, counting all
    assert _messages(stack, "lina")[len(before) + 3:] == [_notice("张晓雨", SERUM_NAME, 5)]
    rows = await _rows(stack)
    assert [(r.status, r.key.startswith(f"radar:lina:{customer}:")) for r in rows] \
        == [("done", True)] * 4
    assert len({r.key for r in rows}) == 4
    assert [c["body"]["touser"] for c in stack.calls("message/send") if c["errcode"] == 0
            and SERUM_NAME in c["body"].get("text", {}).get("content", "")] == ["lina"] * 4
    assert await _touches(stack, token) == [("visit", customer)] * 6  # every visit recorded


async def test_an_anonymous_click_tells_nobody(stack: Stack) -> None:
    customer = await _add(stack, "lina", "李雷")
    token = await _link(stack, "lina")
    before = _messages(stack, "lina")
    await _open(stack, token, T0, external_userid=customer)  # unsigned: anyone could send it
    await _open(stack, token, T0 + timedelta(minutes=1), external_userid=customer,
                ts=str(int(T0.timestamp())), sig="0" * 64)  # a forged signature
    assert await _touches(stack, token) == [("click", None)] * 2
    assert _messages(stack, "lina") == before
    assert await _rows(stack) == []
    assert [i for i in await stack.inbox_rows() if "CardOpened" in i.payload] == []
    await _open(stack, token, T0 + timedelta(minutes=2), customer)  # the control: signed
    assert _messages(stack, "lina")[len(before):] == [_notice("李雷", SERUM_NAME, 1)]


async def test_a_customer_who_no_longer_follows_the_guide_tells_nobody(stack: Stack) -> None:
    left = await _add(stack, "lina", "韩梅梅")
    answer = await stack.sandbox.simulate_event("acme", {
        "Event": "change_external_contact", "ChangeType": "del_follow_user",
        "UserID": "lina", "ExternalUserID": left})
    assert answer["delivery"]["status"] == 200
    await stack.runtime.drain()
    elsewhere = await _add(stack, "wangfang", "周婷")  # follows another guide only
    token = await _link(stack, "lina")
    before = _messages(stack, "lina")
    await _open(stack, token, T0, left)
    await _open(stack, token, T0 + timedelta(minutes=1), elsewhere)
    assert await _touches(stack, token) == [("visit", left), ("visit", elsewhere)]
    assert _messages(stack, "lina") == before
    assert _messages(stack, "wangfang") == []  # the card is lina's
    assert await _rows(stack) == []
    handled = [i for i in await stack.inbox_rows() if "CardOpened" in i.payload]
    assert len(handled) == 2 and all(i.processed_at is not None for i in handled)


async def test_a_card_made_for_one_customer_tells_the_guide_without_a_signature(
        stack: Stack) -> None:
    """The sidebar's cards are made for the customer of the chat: any visit of them is that
    customer's, and names the product of the link (no catalog product: its campaign)."""
    customer = await _add(stack, "lina", "陈思")
    token = await _link(stack, "lina", customer=customer)
    campaign = await _link(stack, "lina", sku="NOT-IN-CATALOG", customer=customer,
                           campaign="double11")
    before = _messages(stack, "lina")
    await _open(stack, token, T0)
    assert await _touches(stack, token) == [("click", None)]  # attribution still ignores it
    assert _messages(stack, "lina")[len(before):] == [_notice("陈思", SERUM_NAME, 1)]
    await _open(stack, campaign, T0 + timedelta(minutes=45))
    assert _messages(stack, "lina")[len(before) + 1:] == [_notice("陈思", "double11", 2)]


async def test_a_failed_send_does_not_fail_the_beacon_and_is_retried(
        stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    customer = await _add(stack, "lina", "郑佳怡")
    token = await _link(stack, "lina")
    before = _messages(stack, "lina")
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/faults", json={
            "tenant": "acme", "path": "message/send", "errcode": -1, "times": 10}) as resp:
        assert resp.status == 200
    await _open(stack, token, T0, customer)  # answered 204
    assert await _touches(stack, token) == [("visit", customer)]
    assert _messages(stack, "lina") == before
    assert [r.status for r in await _rows(stack)] == ["failed"]
    async with stack.http.delete(f"{stack.sandbox_url}/_sandbox/faults") as resp:
        assert resp.status == 200
    services = stack.runtime.services
    later = datetime.now(UTC) + timedelta(minutes=10)
    monkeypatch.setattr(outbox, "utcnow", lambda: later)
    assert await services.outbox.retry_due(services.calls) >= 1
    assert _messages(stack, "lina")[len(before):] == [_notice("郑佳怡", SERUM_NAME, 1)]
    assert [r.status for r in await _rows(stack)] == ["done"]


async def test_card_opened_false_tells_nobody(
        aiohttp_server: Any, tmp_path: Path, db_url: str) -> None:
    stack = await start_stack(aiohttp_server, tmp_path, db_url,
                              config_extra="\n[tenants.acme.alerts]\ncard_opened = false\n")
    try:
        assert stack.tenant().alerts.card_opened is False
        assert stack.tenant("beta").alerts.card_opened is True
        customer = await _add(stack, "lina", "张晓雨")
        token = await _link(stack, "lina")
        before = _messages(stack, "lina")
        await _open(stack, token, T0, customer)
        assert await _touches(stack, token) == [("visit", customer)]
        assert _messages(stack, "lina") == before
        assert await _rows(stack) == []
        assert [i for i in await stack.inbox_rows() if "CardOpened" in i.payload] == []
    finally:
        await stack.http.close()


async def test_the_window_is_configurable(
        aiohttp_server: Any, tmp_path: Path, db_url: str) -> None:
    stack = await start_stack(
        aiohttp_server, tmp_path, db_url,
        config_extra="\n[tenants.acme.alerts]\ncard_opened_window_minutes = 60\n")
    try:
        customer = await _add(stack, "lina", "王强")
        token = await _link(stack, "lina")
        before = _messages(stack, "lina")
        await _open(stack, token, T0, customer)
        await _open(stack, token, T0 + timedelta(minutes=45), customer)  # 30 would be two
        assert _messages(stack, "lina")[len(before):] == [_notice("王强", SERUM_NAME, 1)]
        await _open(stack, token, T0 + timedelta(minutes=60), customer)  # 03:01: the next
        assert _messages(stack, "lina")[len(before) + 1:] == [_notice("王强", SERUM_NAME, 3)]
    finally:
        await stack.http.close()


@pytest.mark.parametrize(("value", "problem"), [
    ("0", "must be from 1 to 1440 (minutes), got 0"),
    ("1441", "must be from 1 to 1440 (minutes), got 1441"),
    ('"30"', "must be an integer, got str")])
def test_a_window_out_of_range_is_a_configuration_error_naming_the_key(
        tmp_path: Path, sqlite_url: str, value: str, problem: str) -> None:
    path = write_config(tmp_path, sqlite_url,
                        extra=f"\n[tenants.acme.alerts]\ncard_opened_window_minutes = {value}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert (caught.value.key, caught.value.problem) == (
        "tenants.acme.alerts.card_opened_window_minutes", problem)
