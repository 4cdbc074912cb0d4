"""GET /metrics: Prometheus text from prometheus-client, after real callbacks over HTTP."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from guidebot.metrics import REFRESH_S
from tests.support.metrics import scrape as _scrape
from tests.support.metrics import value as _value
from tests.support.stack import Stack, start_stack
from tests.support.wecom import add_contact_xml, encrypt_callback


async def test_metrics_after_real_callbacks(stack: Stack) -> None:
    added = await stack.sandbox.simulate_add_contact("acme", userid="lina", name="张晓雨")
    assert added["delivery"]["status"] == 200
    corp = stack.tenant().corp_id
    # Not from the sandbox: its welcome code is unknown there, so the welcome fails (41051).
    xml = add_contact_xml(corp_id=corp, guide="lina", external_userid="wmMETRICS0001",
                          welcome_code="WC-METRICS-1")
    assert [await stack.post_callback(xml) for _ in range(2)] == [200, 200]
    forged = encrypt_callback(replace(stack.tenant(), token="WrongToken1"), xml)
    assert await stack.post_signed(forged) == 403
    await stack.runtime.drain()
    # A WeCom call that fails: tags on a relation guidebot knows (from the callback above)
    # and the sandbox does not (84061 → 409).
    status, _ = await stack.admin("/customers/wmMETRICS0001/tags", method="POST",
                                  json={"guide": "lina", "add": ["门店扫码"]})
    assert status == 409
    async with stack.http.post(f"{stack.bot_url}/orders/acme", data=b"{}") as resp:
        order_status = resp.status
    async with stack.http.post(f"{stack.bot_url}/orders/nosuchtenant", data=b"{}") as resp:
        assert resp.status == 404

    m = await _scrape(stack)
    calls = "guidebot_callbacks_total"
    assert _value(m, calls, tenant="acme", result="accepted") == 2
    assert _value(m, calls, tenant="acme", result="duplicate") == 1
    assert _value(m, calls, tenant="acme", result="rejected_403") == 1
    wecom = "guidebot_wecom_calls_total"
    assert (_value(m, wecom, tenant="acme", api="gettoken", errcode="0") or 0) >= 1
    assert _value(m, wecom, tenant="acme", api="externalcontact/send_welcome_msg",
                  errcode="0") == 1
    assert _value(m, wecom, tenant="acme", api="externalcontact/send_welcome_msg",
                  errcode="41051") == 1
    assert _value(m, wecom, tenant="acme", api="externalcontact/mark_tag",
                  errcode="84061") == 1
    assert _value(m, "guidebot_inbox_depth", tenant="acme") == 0
    assert _value(m, "guidebot_inbox_lag_seconds", tenant="acme") == 0
    assert _value(m, "guidebot_inbox_depth", tenant="beta") == 0
    assert (_value(m, "guidebot_outbox_rows", tenant="acme", state="done") or 0) >= 1
    assert (_value(m, "guidebot_outbox_rows", tenant="acme", state="dead") or 0) >= 1
    assert _value(m, "guidebot_outbox_rows", tenant="beta", state="dead") == 0
    orders = "guidebot_orders_received_total"
    assert _value(m, orders, tenant="acme", status=str(order_status)) == 1
    assert not any(dict(k).get("tenant") == "nosuchtenant" for k in m.get(orders, {}))
    # Every welcome sent is in the latency histogram (from the add's CreateTime).
    sent = [c for c in stack.calls("externalcontact/send_welcome_msg") if c["errcode"] == 0]
    assert sent and _value(m, "guidebot_welcome_latency_seconds_count", tenant="acme") \
        == len(sent)
    before = _value(m, "guidebot_welcome_latency_seconds_bucket", tenant="acme", le="+Inf")
    stack.runtime.services.metrics.observe_welcome("acme", 1e6)
    m = await _scrape(stack)
    assert _value(m, "guidebot_welcome_latency_seconds_bucket", tenant="acme", le="+Inf") \
        == before + 1


async def test_inbox_depth_and_lag_are_read_from_the_database(stack: Stack) -> None:
    xml = add_contact_xml(corp_id=stack.tenant().corp_id, guide="lina",
                          external_userid="wmMETRICS0002", welcome_code="WC-METRICS-2")
    # Stored but not handed to the workers: an inbox row waiting to be processed.
    assert await stack.runtime.writer.submit("acme", xml) is not None
    m = await _scrape(stack)
    assert _value(m, "guidebot_inbox_depth", tenant="acme") == 1
    assert (_value(m, "guidebot_inbox_lag_seconds", tenant="acme") or -1) >= 0
    assert _value(m, "guidebot_inbox_depth", tenant="beta") == 0


class Clock:
    """Seconds the test moves on by hand (the metrics' refresh clock)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_database_figures_are_read_at_most_once_per_few_seconds(
        stack: Stack) -> None:
    clock = Clock()
    stack.runtime.services.metrics.clock = clock
    reads = "guidebot_metrics_refreshes_total"
    m = await _scrape(stack)
    assert _value(m, reads) == 1 and _value(m, "guidebot_inbox_depth", tenant="acme") == 0
    xml = add_contact_xml(corp_id=stack.tenant().corp_id, guide="lina",
                          external_userid="wmMETRICS0003", welcome_code="WC-METRICS-3")
    assert await stack.runtime.writer.submit("acme", xml) is not None
    clock.now += REFRESH_S - 1
    # a second scrape (and two at once) within the window: the figures last read
    both = await asyncio.gather(_scrape(stack), _scrape(stack))
    assert [_value(x, reads) for x in (m, *both)] == [1, 1, 1]
    assert [_value(x, "guidebot_inbox_depth", tenant="acme") for x in both] == [0, 0]
    clock.now += 1
    m = await _scrape(stack)
    assert _value(m, reads) == 2 and _value(m, "guidebot_inbox_depth", tenant="acme") == 1


@pytest.fixture
async def guarded(aiohttp_server: Any, tmp_path: Path, db_url: str,
                  monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("GUIDEBOT_TEST_METRICS_TOKEN", "scrape-token-3f9a")
    stack = await start_stack(aiohttp_server, tmp_path, db_url, config_extra=(
        '\n[server]\nmetrics_token_env = "GUIDEBOT_TEST_METRICS_TOKEN"\n'))
    yield stack
    await stack.http.close()


async def test_a_metrics_token_guards_the_page(guarded: Stack) -> None:
    url = f"{guarded.bot_url}/metrics"
    for headers in ({}, {"Authorization": "Bearer wrong-token"},
                    {"Authorization": "scrape-token-3f9a"},  # no scheme
                    {"Authorization": "Basic scrape-token-3f9a"}):
        async with guarded.http.get(url, headers=headers) as resp:
            assert resp.status == 401, headers
            assert "guidebot_" not in await resp.text()
    async with guarded.http.get(url, headers={
            "Authorization": "Bearer scrape-token-3f9a"}) as resp:
        assert resp.status == 200
        text = await resp.text()
    assert 'guidebot_inbox_depth{tenant="acme"} 0.0' in text
    assert "guidebot_metrics_refreshes_total 1.0" in text  # the refused read nothing


async def test_wrong_metrics_tokens_are_throttled_per_address(guarded: Stack) -> None:
    url = f"{guarded.bot_url}/metrics"
    failures = guarded.settings.server.signin_failures
    for _ in range(failures):
        async with guarded.http.get(url, headers={"Authorization": "Bearer wrong"}) as resp:
            assert resp.status == 401
    for token in ("wrong", "scrape-token-3f9a"):  # the right token too, while it lasts
        async with guarded.http.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
            assert resp.status == 429 and int(resp.headers["Retry-After"]) > 0
            assert "guidebot_" not in await resp.text()
    async with guarded.http.get(url) as resp:  # no header at all is never a failure
        assert resp.status == 401


async def test_without_a_token_the_page_is_open(stack: Stack) -> None:
    assert stack.settings.server.metrics_token == ""
    async with stack.http.get(f"{stack.bot_url}/metrics") as resp:
        assert resp.status == 200
