"""Content drops and the per-customer 群发 quota (1/day by default): a drop leaves out the
customers whose quota is used (counted in its 群发记录, even for a guide left without a task),
and what a drop sent counts for their SOP steps."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from guidebot.db.repo import sop_plan
from tests.support.console import Console, csrf_in
from tests.support.stack import Stack, known, library_copy, start_stack

DATA = Path(__file__).resolve().parents[1] / "data" / "sop"
DROP_AT = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)  # quota_drop: 10:00 in Shanghai
DROP_TEXT = "双12"  # drop_double12_warmup's text; flash step 1 sends it too


@pytest.fixture
async def drop_stack(aiohttp_server: Any, tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    library = library_copy(tmp_path, {"sops/flash.toml": DATA / "flash.toml",
                                      "drops/quota_drop.toml": DATA / "quota_drop.toml"})
    stack = await start_stack(aiohttp_server, tmp_path, db_url, library=library)
    yield stack
    await stack.http.close()


async def _add(stack: Stack, name: str) -> str:
    # no channel code: 新客培育 (state_prefix "gb") stays out of these customers' quota
    added = await stack.sandbox.simulate_add_contact("acme", userid="lina", name=name)
    await stack.runtime.drain()
    return str(added["external_userid"])


async def _enroll_flash(stack: Stack, customer: str, at: datetime) -> None:
    stack.runtime.services.sop.clock = lambda: at
    await known(stack, customers=(customer,), guides=("lina",))
    status, body = await stack.admin("/sops/flash/enroll", method="POST",
                                     json={"external_userid": customer, "guide": "lina"})
    assert status == 201, body


async def _fire_drop(stack: Stack) -> None:
    sop = stack.runtime.services.sop
    sop.clock = lambda: DROP_AT + timedelta(minutes=5)
    await sop.singletons("acme")
    await sop.singletons("acme")
    await sop.tick("acme")


def _sends(stack: Stack) -> list[tuple[str, ...]]:
    return [tuple(c["body"]["external_userid"])
            for c in stack.calls("externalcontact/add_msg_template")]


async def test_a_drop_leaves_out_customers_whose_quota_is_used(drop_stack: Stack) -> None:
    stack = drop_stack
    busy, free = await _add(stack, "陈思"), await _add(stack, "林悦")
    await _enroll_flash(stack, busy, DROP_AT - timedelta(minutes=30))  # 09:30: step 1 at 09:31
    stack.runtime.services.sop.clock = lambda: DROP_AT - timedelta(minutes=28)
    await stack.runtime.services.sop.tick("acme")
    assert _sends(stack) == [(busy,)]  # busy's 群发 for the day

    await _fire_drop(stack)
    assert _sends(stack) == [(busy,), (free,)]
    status, body = await stack.admin("/tasks?guide=lina")
    assert status == 200, body
    [drop] = [t for t in body["tasks"]
              if (t["source"], t["kind"]) == ("drop:quota_drop", "guide_task")]
    assert (drop["recipients"], drop["detail"]) == (1, {"over_quota": 1})


async def test_what_a_drop_sent_counts_for_the_customers_sop_steps(drop_stack: Stack) -> None:
    stack = drop_stack
    sop = stack.runtime.services.sop
    customer = await _add(stack, "周宁")
    day_before = DROP_AT - timedelta(hours=22)  # 2026-11-20 12:00 in Shanghai
    await _enroll_flash(stack, customer, day_before)
    sop.clock = lambda: day_before + timedelta(minutes=2)
    await sop.tick("acme")  # step 1 (+1m) on the 20th
    await _fire_drop(stack)  # the drop on the 21st, 10:00
    assert _sends(stack) == [(customer,), (customer,)]

    # step 2 (+1d) is due the 21st 12:01, the day the drop used: the customer's quota is
    # spent, so it waits for the next day, out of quiet hours (21:00-09:00)
    sop.clock = lambda: day_before + timedelta(days=1, minutes=5)
    await sop.tick("acme")
    assert len(_sends(stack)) == 2
    async with stack.runtime.services.db.read() as s:
        steps = await sop_plan.customer_steps(s, tenant="acme", external_userid=customer)
    flash = sorted((st.step_index, st.status, st.due_at, st.reason) for st in steps
                   if st.sop_id == "flash")
    assert flash[1] == (1, "planned", datetime(2026, 11, 22, 1, 0, tzinfo=UTC),
                        "deferred: quota 1/day used")

    sop.clock = lambda: datetime(2026, 11, 22, 1, 5, tzinfo=UTC)
    await sop.tick("acme")
    assert _sends(stack) == [(customer,), (customer,), (customer,)]


async def test_sends_count_a_guide_whose_customers_were_all_over_quota(
        drop_stack: Stack) -> None:
    """lina's only customer had the day's 群发 (flash step 1): a drop to lina's and wang's
    customers makes no task for lina, yet its 群发记录 counts her customer over quota; fired
    again that day, it reaches no one and is listed with both customers over quota; stopping
    that task-less firing (admin API or console) is a no-op answering zero counts."""
    stack = drop_stack
    sop = stack.runtime.services.sop
    busy = await _add(stack, "陈思")
    added = await stack.sandbox.simulate_add_contact("acme", userid="wang", name="林悦")
    await stack.runtime.drain()
    free = str(added["external_userid"])
    await _enroll_flash(stack, busy, DROP_AT - timedelta(minutes=30))
    sop.clock = lambda: DROP_AT - timedelta(minutes=28)
    await sop.tick("acme")
    assert _sends(stack) == [(busy,)]

    sop.clock = lambda: DROP_AT
    status, created = await stack.admin("/drops", method="POST", json={
        "title": "会员日", "channel": "guide_task", "message": "drop_double12_warmup",
        "audience": {"guides": ["lina", "wang"]}, "at": "now"})
    assert status == 201 and created["tasks"] == 1, created
    await sop.tick("acme")
    assert _sends(stack) == [(busy,), (free,)]
    status, body = await stack.admin("/tasks")
    assert status == 200, body
    assert [(t["guide"], t["detail"]) for t in body["tasks"]
            if (t["source"], t["kind"]) == ("drop:hq-1", "guide_task")] == [("wang", {})]
    status, sends = await stack.admin("/drops/hq-1/sends")
    assert status == 200, sends
    [firing] = sends["firings"]
    assert (firing["firing"], firing["tasks"], firing["recipients"], firing["over_quota"],
            firing["duplicates"]) == (created["firing"], 1, 1, 1, 0), firing

    sop.clock = lambda: DROP_AT + timedelta(minutes=10)
    status, again = await stack.admin("/drops/hq-1/fire", method="POST", json={})
    assert status == 200 and again["tasks"] == 0, again
    status, sends = await stack.admin("/drops/hq-1/sends")
    assert status == 200, sends
    assert [(f["firing"], f["tasks"], f["recipients"], f["over_quota"], f["can_stop"])
            for f in sends["firings"]] == [(again["firing"], 0, 0, 2, False),
                                           (created["firing"], 1, 1, 1, True)], sends

    status, stopped = await stack.admin("/drops/hq-1/stop", method="POST",
                                        json={"firing": again["firing"]})
    assert (status, stopped) == (200, {
        "drop": "hq-1", "firing": again["firing"], "not_sent": 0, "cancelled_in_wecom": 0,
        "already_sent": 0, "pending": 0, "notices_cancelled": 0}), stopped
    assert (await stack.admin("/drops/hq-1/sends"))[1] == sends  # nothing changed
    status, missing = await stack.admin("/drops/hq-1/stop", method="POST",
                                        json={"firing": "manual:00"})
    assert (status, missing["field"]) == (404, "firing"), missing

    console = Console(stack)
    try:
        assert (await console.login("acme", "acme-admin-token")).status == 303
        status, html, _ = await console.get("/console/acme/drops/hq-1")
        assert status == 200, html
        row = re.search(rf'data-firing="{re.escape(again["firing"])}".*?</tr>', html, re.S)
        assert row and 'data-over-quota="2"' in row.group(0), html
        assert "<button" not in row.group(0)  # nothing to stop: no button
        status, _, resp = await console.post("/console/acme/drops/hq-1/stop", {
            "_csrf": csrf_in(html), "firing": again["firing"]})  # e.g. an older page's form
        assert status == 303, resp.headers
        status, page, _ = await console.get(resp.headers["Location"])
        assert status == 200 and "已停止：0 个任务未发出，0 个在企业微信中取消" in page, page
    finally:
        await console.close()
    assert not stack.calls("externalcontact/cancel_groupmsg_send")
