"""停止群发 for an SOP step over HTTP: HQ stops a step's tasks from the admin API or the SOP's
console page. Tasks not sent yet are never sent and their steps are cancelled; 群发 tasks WeCom
holds are cancelled there unless their guide sent them; the customers' journeys go on to the
next step; a stopped step that never reached its customer frees their 群发 quota, one sent
keeps it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from guidebot.db.models_sop import SopStep
from tests.support.console import Console, csrf_in
from tests.support.stack import Stack, stack_with

DATA = Path(__file__).resolve().parents[1] / "data" / "sop"
T0 = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai: no quiet hours near


async def _enrolled(stack: Stack, sop_id: str = "flash") -> dict[str, str]:
    """One enrollment in `sop_id` for a customer of lina and one of wang, at T0."""
    sop = stack.runtime.services.sop
    sop.clock = lambda: T0
    customers = {}
    for guide in ("lina", "wang"):
        added = await stack.sandbox.simulate_add_contact("acme", userid=guide,
                                                         name=f"客户{guide}")
        customers[guide] = str(added["external_userid"])
    await stack.runtime.drain()
    for guide, customer in customers.items():
        status, body = await stack.admin(f"/sops/{sop_id}/enroll", method="POST", json={
            "external_userid": customer, "guide": guide})
        assert status == 201, body
    return customers


async def _steps(stack: Stack, index: int) -> dict[str, tuple[str, str]]:
    async with stack.runtime.services.db.read() as s:
        rows = (await s.execute(select(SopStep).where(SopStep.sop_id == "flash",
                                                      SopStep.step_index == index))).scalars()
        return {r.external_userid: (r.status, r.reason) for r in rows}


def _sends(stack: Stack) -> list[list[str]]:
    return [c["body"]["external_userid"] for c in
            stack.calls("externalcontact/add_msg_template") if c["errcode"] == 0]


async def test_a_step_stopped_in_wecom_and_the_journey_goes_on(flash_stack: Stack) -> None:
    stack = flash_stack
    customers = await _enrolled(stack)
    sop = stack.runtime.services.sop
    sop.clock = lambda: T0 + timedelta(minutes=2)
    await sop.tick("acme")
    assert sorted(c for s in _sends(stack) for c in s) == sorted(customers.values())
    _, tasks = await stack.admin("/tasks")
    msgids = {t["guide"]: t["msgid"] for t in tasks["tasks"] if t["kind"] == "guide_task"}
    stack.sandbox.confirm_groupmsg("acme", msgids["lina"], "lina")

    status, stopped = await stack.admin("/sops/flash/stop", method="POST", json={"step": 1})
    assert status == 200, stopped
    assert (stopped["sop"], stopped["step"], stopped["not_sent"],
            stopped["cancelled_in_wecom"], stopped["already_sent"]) == ("flash", 1, 0, 1, 1)
    assert [c["body"]["msgid"] for c in stack.calls(
        "externalcontact/cancel_groupmsg_send")] == [msgids["wang"]]
    steps = await _steps(stack, 0)
    assert steps[customers["wang"]] == ("cancelled", "stopped by HQ"), steps
    assert steps[customers["lina"]][0] == "queued"  # sent with its task (effective status)

    # both journeys go on: step 2 a day later reaches both customers
    sop.clock = lambda: T0 + timedelta(days=1, minutes=5)
    await sop.tick("acme")
    assert sorted(_sends(stack)[-2:]) == sorted([[customers["lina"]], [customers["wang"]]])


async def test_a_step_stopped_before_sending_sends_nothing(flash_stack: Stack) -> None:
    stack = flash_stack
    customers = await _enrolled(stack)
    sop = stack.runtime.services.sop
    sop.clock = lambda: T0 + timedelta(minutes=2)
    await sop.plan("acme")
    await sop.dispatcher.batch("acme")  # tasks made, not yet handed to WeCom
    assert await sop.step_tasks("acme", "flash") == {0: 2}
    _, stopped = await stack.admin("/sops/flash/stop", method="POST", json={"step": 1})
    assert (stopped["not_sent"], stopped["cancelled_in_wecom"], stopped["pending"]) == (2, 0, 0)
    await sop.tick("acme")
    assert _sends(stack) == []
    assert {c: st for c, (st, _) in (await _steps(stack, 0)).items()} == {
        c: "cancelled" for c in customers.values()}
    assert await sop.step_tasks("acme", "flash") == {}

    for body, code, field in (({"step": 0}, 400, "step"), ({"step": 3}, 400, "step"),
                              ({}, 400, "step")):
        status, answer = await stack.admin("/sops/flash/stop", method="POST", json=body)
        assert status == code and answer["field"] == field, (body, answer)
    status, answer = await stack.admin("/sops/nosuch/stop", method="POST", json={"step": 1})
    assert status == 404 and answer["field"] == "sop_id", answer


async def test_the_console_stops_a_step(flash_stack: Stack) -> None:
    stack = flash_stack
    await _enrolled(stack)
    sop = stack.runtime.services.sop
    sop.clock = lambda: T0 + timedelta(minutes=2)
    await sop.tick("acme")
    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        status, html, _ = await console.get("/console/acme/sops/flash")
        assert status == 200
        row = re.search(r'<tr data-step="0">.*?</tr>', html, re.S)
        assert row and re.search(r'data-figure="open">2 <form', row.group(0)), row
        form = {"_csrf": csrf_in(html), "step": "1"}
        status, _, resp = await console.post("/console/acme/sops/flash/stop", form)
        assert status == 303, resp.headers
        status, page, _ = await console.get(resp.headers["Location"])
        assert "已停止：0 个任务未发出，2 个在企业微信中取消" in page, page
        row = re.search(r'<tr data-step="0">.*?</tr>', page, re.S)
        assert row and 'data-figure="open">0</td>' in row.group(0)
        status, refused, _ = await console.post("/console/acme/sops/flash/stop",
                                                {**form, "step": "9"})
        assert status == 400 and "没有这一步" in refused, refused
    finally:
        await console.close()


@pytest.fixture
async def quota_stack(aiohttp_server: Any, tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    """quota_a (群发 at +1m and +2h, the quota 1/day) and a drop HQ fires by hand."""
    stack = await stack_with(aiohttp_server, tmp_path, db_url, {
        "sops/quota_a.toml": DATA / "quota_a.toml",
        "drops/stop_drop.toml": DATA / "stop_drop.toml"})
    yield stack
    await stack.http.close()


async def test_a_stopped_step_frees_the_quota_a_sent_one_keeps_it(quota_stack: Stack) -> None:
    """Both customers' step 1 reached WeCom; lina sent hers, wang's was cancelled there by the
    stop. The day's quota (1) is wang's customer's again: step 2 (+2h) goes out that day; lina's
    customer got step 1, so her step 2 waits for the next day."""
    stack = quota_stack
    customers = await _enrolled(stack, "quota_a")
    sop = stack.runtime.services.sop
    sop.clock = lambda: T0 + timedelta(minutes=2)
    await sop.tick("acme")
    _, tasks = await stack.admin("/tasks")
    msgids = {t["guide"]: t["msgid"] for t in tasks["tasks"] if t["kind"] == "guide_task"}
    stack.sandbox.confirm_groupmsg("acme", msgids["lina"], "lina")
    _, stopped = await stack.admin("/sops/quota_a/stop", method="POST", json={"step": 1})
    assert (stopped["cancelled_in_wecom"], stopped["already_sent"]) == (1, 1), stopped

    for minutes in range(30, 20 * 60, 30):  # a pass every 30 minutes until 08:00 next day
        sop.clock = lambda m=minutes: T0 + timedelta(minutes=m)
        await sop.tick("acme")
    steps = await _steps_of(stack, "quota_a", 1)
    assert steps[customers["wang"]] == T0 + timedelta(hours=2), steps  # 14:00 that day
    assert steps[customers["lina"]] == T0 + timedelta(hours=21), steps  # 09:00 the next day
    assert _sends(stack)[-1] == [customers["wang"]]


async def test_a_step_stopped_before_sending_leaves_the_quota_to_a_drop(
        quota_stack: Stack) -> None:
    """Step 1 of both customers is stopped before sending; the same day a drop reaches them
    both. Had one been sent, the drop would leave that customer out (quota 1/day)."""
    stack = quota_stack
    customers = await _enrolled(stack, "quota_a")
    sop = stack.runtime.services.sop
    sop.clock = lambda: T0 + timedelta(minutes=2)
    await sop.plan("acme")
    await sop.dispatcher.batch("acme")  # tasks made, not yet handed to WeCom
    _, stopped = await stack.admin("/sops/quota_a/stop", method="POST", json={"step": 1})
    assert stopped["not_sent"] == 2, stopped
    sop.clock = lambda: T0 + timedelta(minutes=10)
    status, fired = await stack.admin("/drops/stop_drop/fire", method="POST", json={})
    assert status == 200 and fired["tasks"] == 2, fired
    await sop.tick("acme")
    assert sorted(c for s in _sends(stack) for c in s) == sorted(customers.values())
    _, tasks = await stack.admin("/tasks")
    assert [t["detail"].get("over_quota", 0) for t in tasks["tasks"]
            if t["source"] == "drop:stop_drop" and t["kind"] == "guide_task"] == [0, 0]

    # a drop fired again that day finds both customers' quota used by the first one
    sop.clock = lambda: T0 + timedelta(minutes=20)
    _, again = await stack.admin("/drops/stop_drop/fire", method="POST", json={})
    assert again["tasks"] == 0, again


async def _steps_of(stack: Stack, sop_id: str, index: int) -> dict[str, datetime]:
    """Each customer's due time of the SOP's step `index` (from 0)."""
    async with stack.runtime.services.db.read() as s:
        rows = (await s.execute(select(SopStep).where(SopStep.sop_id == sop_id,
                                                      SopStep.step_index == index))).scalars()
        return {r.external_userid: r.due_at for r in rows}
