"""停止群发 for an SOP step over HTTP: HQ stops a step's tasks from the admin API or the SOP's
console page. Tasks not sent yet are never sent and their steps are cancelled; 群发 tasks WeCom
holds are cancelled there unless their guide sent them; the customers' journeys go on to the
next step."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from guidebot.db.models_sop import SopStep
from tests.support.console import Console, csrf_in
from tests.support.stack import Stack

T0 = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai: no quiet hours near


async def _enrolled(stack: Stack) -> dict[str, str]:
    """One flash enrollment for a customer of lina and one of wang, at T0."""
    sop = stack.runtime.services.sop
    sop.clock = lambda: T0
    customers = {}
    for guide in ("lina", "wang"):
        added = await stack.sandbox.simulate_add_contact("acme", userid=guide,
                                                         name=f"客户{guide}")
        customers[guide] = str(added["external_userid"])
    await stack.runtime.drain()
    for guide, customer in customers.items():
        status, body = await stack.admin("/sops/flash/enroll", method="POST", json={
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
