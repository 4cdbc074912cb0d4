"""Usage metering for a seeded month (October 2026, Asia/Shanghai): active guides, customers
added, messages by kind from the outbox's done rows, attributed orders and GMV; the same
figures from the admin API, the CLI (JSON and CSV) and the operator's page."""

from __future__ import annotations

import asyncio
import csv
import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from guidebot.cli import main
from guidebot.db.models import OutboxItem
from guidebot.db.models_usage import LlmCall
from tests.support.commerce import paid, post_settled
from tests.support.stack import Stack

# October 2026 in Shanghai is [2026-09-30 16:00Z, 2026-10-31 16:00Z)
IN_OCTOBER = datetime(2026, 10, 5, 2, 0, tzinfo=UTC)
LAST_OCTOBER_HOUR = datetime(2026, 10, 31, 15, 30, tzinfo=UTC)  # 23:30 local
NOVEMBER_LOCAL = datetime(2026, 10, 31, 16, 30, tzinfo=UTC)  # 00:30 on 1 Nov local
SEPTEMBER_LOCAL = datetime(2026, 9, 30, 15, 59, tzinfo=UTC)  # 23:59 on 30 Sep local
OPERATOR_TOKEN = "operator-token-for-tests-7f3a"

# outbox kind, status, finished at → what October counts
OUTBOX = [("sop_guide_task", "done", IN_OCTOBER), ("sop_guide_task", "done", LAST_OCTOBER_HOUR),
          ("sop_guide_task", "dead", IN_OCTOBER), ("sop_guide_task", "done", NOVEMBER_LOCAL),
          ("sop_moment", "done", IN_OCTOBER), ("sop_reminder", "done", IN_OCTOBER),
          ("sop_notify", "done", SEPTEMBER_LOCAL), ("sop_notify", "done", IN_OCTOBER),
          ("welcome", "done", IN_OCTOBER), ("mark_tag", "done", IN_OCTOBER),
          ("kf_send", "done", IN_OCTOBER), ("kf_send", "done", LAST_OCTOBER_HOUR),
          ("kf_send", "failed", IN_OCTOBER), ("kf_welcome", "done", IN_OCTOBER),
          ("kf_notify", "done", IN_OCTOBER), ("app_text", "done", IN_OCTOBER),
          ("material_review", "done", NOVEMBER_LOCAL), ("material_review", "done", IN_OCTOBER),
          ("churn_notify", "done", IN_OCTOBER), ("churn_notify", "dead", IN_OCTOBER),
          ("kf_future_kind", "done", IN_OCTOBER)]
EXPECTED_MESSAGES = {"welcome": 1, "mass_task": 2, "moment": 1, "kf_reply": 3,
                     "app_message": 6}
# tenant, at, prompt tokens, completion tokens → October's acme: 2 calls, 1,000 + 123 tokens
LLM_CALLS = [("acme", IN_OCTOBER, 700, 100), ("acme", LAST_OCTOBER_HOUR, 300, 23),
             ("acme", NOVEMBER_LOCAL, 5_000, 500), ("acme", SEPTEMBER_LOCAL, 9_000, 900),
             ("beta", IN_OCTOBER, 40, 4)]


async def _seed(stack: Stack) -> None:
    adds = [("lina", "c1", IN_OCTOBER), ("lina", "c2", IN_OCTOBER),
            ("chenjing", "c1", LAST_OCTOBER_HOUR), ("wangfang", "c3", NOVEMBER_LOCAL)]
    customers: dict[str, str] = {}
    for guide, name, at in adds:
        added = await stack.sandbox.simulate_add_contact(
            "acme", userid=guide, name=name, external_userid=customers.get(name),
            create_time=int(at.timestamp()))
        customers[name] = str(added["external_userid"])
    await stack.runtime.drain()
    async with stack.runtime.services.db.write() as s:
        for n, (kind, status, at) in enumerate(OUTBOX):
            s.add(OutboxItem(tenant="acme", key=f"usage-test:{n}", kind=kind, payload="{}",
                             status=status, created_at=at, updated_at=at, due_at=at))
        for tenant, at, prompt, completion in LLM_CALLS:
            s.add(LlmCall(tenant=tenant, at=at, purpose="reply", model="m",
                          prompt_tokens=prompt, completion_tokens=completion))
    item = [{"sku": "SKU-LIPSTICK-01", "category": "beauty", "quantity": 1,
             "amount_fen": 29900}]
    orders = [paid("U1", customer=customers["c1"], paid_at=IN_OCTOBER.replace(day=20),
                   items=item),
              paid("U2", customer=customers["c2"], paid_at=LAST_OCTOBER_HOUR,
                   items=[{**item[0], "amount_fen": 1205}]),
              paid("U3", customer=customers["c2"], paid_at=NOVEMBER_LOCAL, items=item),
              paid("U4", customer="wmNOT_A_CUSTOMER", paid_at=IN_OCTOBER, items=item)]
    for order in orders:
        status, body = await post_settled(stack, order)
        assert status < 300, body


def _check_acme(usage: dict[str, Any]) -> None:
    assert usage["period"] == "2026-10" and usage["timezone"] == "Asia/Shanghai"
    assert usage["active_guides"] == 2  # lina, chenjing; wangfang's relation began in Nov
    assert (usage["customers_added"], usage["relations_added"]) == (2, 3)
    assert usage["messages"] == EXPECTED_MESSAGES
    assert usage["messages_other"] == {"kf_future_kind": 1}
    assert (usage["llm_tokens"], usage["llm_metered"], usage["llm_calls"]) == (1_123, True, 2)
    assert (usage["llm_prompt_tokens"], usage["llm_completion_tokens"]) == (1_000, 123)
    assert (usage["attributed_orders"], usage["attributed_gmv_fen"]) == (2, 29900 + 1205)


async def test_usage_of_a_seeded_month(stack: Stack, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    await _seed(stack)
    status, usage = await stack.admin("/usage?period=2026-10")
    assert status == 200, usage
    _check_acme(usage)
    status, beta = await stack.admin("/usage?period=2026-10", tenant="beta")
    assert status == 200 and beta["active_guides"] == 0 and beta["attributed_orders"] == 0
    assert (beta["llm_tokens"], beta["llm_calls"]) == (44, 1)
    assert sum(beta["messages"].values()) == 0
    assert (await stack.admin("/usage?period=2026-13"))[0] == 400
    assert (await stack.admin("/usage?period=2026-10", token="beta-admin-token"))[0] == 403
    status, november = await stack.admin("/usage?period=2026-11")
    assert november["messages"]["mass_task"] == 1 and november["attributed_orders"] == 1
    assert november["active_guides"] == 3  # lina's and chenjing's relations go on
    assert (november["llm_tokens"], november["messages"]["app_message"]) == (5_500, 1)

    monkeypatch.delenv("GUIDEBOT_DATABASE_URL", raising=False)
    config, out = str(tmp_path / "config.toml"), tmp_path / "usage.csv"
    assert await asyncio.to_thread(main, ["usage", "--config", config, "--period", "2026-10",
                                          "--csv", str(out)]) == 0
    rows = {r["tenant"]: r for r in csv.DictReader(out.open(encoding="utf-8"))}
    assert set(rows) == {"acme", "beta"}
    assert rows["acme"]["messages_mass_task"] == "2" and rows["acme"]["active_guides"] == "2"
    assert rows["acme"]["attributed_gmv_yuan"] == "311.05"
    assert (rows["acme"]["llm_tokens"], rows["acme"]["llm_calls"]) == ("1123", "2")
    assert rows["acme"]["messages_kf_reply"] == "3" and rows["beta"]["llm_tokens"] == "44"
    json_out = tmp_path / "usage.json"
    argv = ["usage", "--config", config, "--period", "2026-10", "--tenant", "acme"]
    code = await asyncio.to_thread(_stdout_to, json_out, argv)
    assert code == 0
    [printed] = json.loads(json_out.read_text(encoding="utf-8"))["tenants"]
    _check_acme(printed)


def _stdout_to(path: Path, argv: list[str]) -> int:
    import contextlib

    with path.open("w", encoding="utf-8") as f, contextlib.redirect_stdout(f):
        return main(argv)


def _with_operator(stack: Stack, token: str) -> None:
    services = stack.runtime.services
    # The running app's settings as if config.toml had named an operator token (the
    # container is frozen: a deployment sets this in config and restarts).
    object.__setattr__(services, "settings", replace(
        services.settings, server=replace(services.settings.server, operator_token=token)))


async def test_the_operator_page_needs_the_operator_token(stack: Stack) -> None:
    await _seed(stack)
    url = f"{stack.bot_url}/operator/usage?period=2026-10"
    async with stack.http.get(url, allow_redirects=False) as resp:
        assert resp.status == 404  # no operator token configured: no operator pages
    _with_operator(stack, OPERATOR_TOKEN)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(url, allow_redirects=False) as resp:
            assert resp.status == 303 and resp.headers["Location"] == "/operator/login"
        for token in ("acme-admin-token", "wrong"):
            async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
                assert resp.status == 403
        bearer = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
        async with http.get(url + "&format=json", headers=bearer) as resp:
            assert resp.status == 200
            report = await resp.json()
        assert [u["tenant"] for u in report["tenants"]] == ["acme", "beta"]
        _check_acme(report["tenants"][0])
        async with http.get(url + "&format=csv", headers=bearer) as resp:
            assert resp.status == 200 and "311.05" in await resp.text()

        login = f"{stack.bot_url}/operator/login"
        async with http.get(login) as resp:
            html = await resp.text()
        csrf = html.split('name="csrf" value="')[1].split('"')[0]
        for form in ({"csrf": csrf, "token": "wrong"},
                     {"csrf": "forged", "token": OPERATOR_TOKEN}, {"token": OPERATOR_TOKEN}):
            async with http.post(login, data=form, allow_redirects=False) as resp:
                assert resp.status == 403, form
        async with http.post(login, data={"csrf": csrf, "token": OPERATOR_TOKEN},
                             allow_redirects=False) as resp:
            assert resp.status == 303 and resp.headers["Location"] == "/operator/usage"
        async with http.get(url) as resp:
            assert resp.status == 200
            page = await resp.text()
        acme_row = page.split('data-tenant="acme"')[1].split("</tr>")[0]
        values = [re.sub(r"<[^>]+>", "", v) for v in re.findall(r"<td[^>]*>(.*?)</td>", acme_row)]
        assert values == ["2", "2", "1", "2", "1", "3", "6", "1123", "2", "¥311.05"]
        assert 'title="2 次调用：输入 1000，输出 123"' in acme_row
        logout_csrf = page.split('name="csrf" value="')[1].split('"')[0]
        async with http.post(f"{stack.bot_url}/operator/logout", data={"csrf": logout_csrf},
                             allow_redirects=False) as resp:
            assert resp.status == 303
        async with http.get(url, allow_redirects=False) as resp:
            assert resp.status == 303  # signed out


async def test_every_outbox_kind_is_metered_as_a_message_or_known_not_to_be(
        stack: Stack) -> None:
    """A new outbox executor must say how usage counts it (and so how the console names it):
    every kind the running services can send is in MESSAGE_KINDS or NOT_MESSAGES."""
    from guidebot.usage.metering import MESSAGE_KINDS, NOT_MESSAGES

    known = {k for kinds in MESSAGE_KINDS.values() for k in kinds} | NOT_MESSAGES
    calls = set(stack.runtime.services.calls)
    assert {"kf_send", "mark_tag", "churn_notify"} <= calls
    assert calls - known == set()
