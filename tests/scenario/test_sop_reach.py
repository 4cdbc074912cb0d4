"""An SOP's `reach`: by default each follow relation enrolls on its own (a customer who adds
two guides runs the SOP through both); `reach = "customer"` enrolls the customer once,
through the first guide, whether the adds come one after the other or in one burst, and
also when a tag or a manual enrolment names the other guide. Adds are real encrypted
callbacks from the sandbox; the console's SOP pages show the reach."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from guidebot.db.models_sop import SopEnrollment
from guidebot.db.repo import sop_plan
from guidebot.db.types import utcnow
from tests.support.console import Console
from tests.support.stack import Stack, stack_with

ONCE = """id = "once_nurture"
title = "一次培育"
quiet_hours = "00:00-00:00"

[trigger]
on = "contact_added"
reach = "customer"

[exit]
on = ["contact_deleted"]

[[steps]]
at = "+1m"
channel = "guide_task"
message = "sop_care_tips"
"""
EACH = ONCE.replace('id = "once_nurture"', 'id = "each_nurture"').replace(
    'title = "一次培育"', 'title = "各自培育"').replace('reach = "customer"\n', "")  # default
ONCE_WELCOME = """id = "once_welcome"
title = "一次欢迎"

[trigger]
on = "contact_added"
reach = "customer"

[[steps]]
at = "+0m"
channel = "welcome"
message = "sop_new_welcome"

[[steps]]
at = "+1d"
channel = "guide_task"
message = "sop_care_tips"
"""
ONCE_TAG = """id = "once_winback"
title = "一次唤醒"

[trigger]
on = "tag_added"
tags_any = ["沉睡客"]
reach = "customer"

[[steps]]
at = "+1d"
channel = "guide_task"
message = "sop_care_tips"
"""
ONCE_MANUAL = """id = "once_manual"
title = "一次手动"

[trigger]
on = "manual"
reach = "customer"

[[steps]]
at = "+1d"
channel = "guide_task"
message = "sop_care_tips"
"""


@pytest.fixture
async def reach_stack(aiohttp_server: Any, tmp_path: Path,  # type: ignore[no-untyped-def]
                      db_url: str):
    stack = await stack_with(aiohttp_server, tmp_path, db_url, {
        "sops/once_nurture.toml": ONCE, "sops/each_nurture.toml": EACH,
        "sops/once_winback.toml": ONCE_TAG,
        "sops/once_manual.toml": ONCE_MANUAL, "sops/once_welcome.toml": ONCE_WELCOME})
    yield stack
    await stack.http.close()


async def _enrolled(stack: Stack, customer: str) -> dict[str, list[str]]:
    """sop id → the guides the customer is enrolled through, in enrollment order."""
    async with stack.runtime.services.db.read() as s:
        rows = (await s.execute(select(SopEnrollment).where(
            SopEnrollment.external_userid == customer).order_by(
                SopEnrollment.id))).scalars()  # type: ignore[arg-type]
        found: dict[str, list[str]] = {}
        for row in rows:
            found.setdefault(row.sop_id, []).append(row.guide)
    return found


async def _add(stack: Stack, guide: str, customer: str, *, drain: bool = True) -> None:
    await stack.sandbox.simulate_add_contact("acme", userid=guide, external_userid=customer,
                                             create_time=int(time.time()))
    if drain:
        await stack.runtime.drain()


async def test_a_customer_adding_two_guides_enrolls_once_with_reach_customer(
        reach_stack: Stack) -> None:
    stack = reach_stack
    await _add(stack, "lina", "wmREACH1")
    await _add(stack, "zhou", "wmREACH1")
    enrolled = await _enrolled(stack, "wmREACH1")
    assert enrolled["each_nurture"] == ["lina", "zhou"]  # default reach: both
    assert enrolled["once_nurture"] == ["lina"]  # the first guide's add wins
    # the SOP's welcome went to the first add only; the second add took the default welcome
    assert enrolled["once_welcome"] == ["lina"]
    welcomes = [(c["body"]["text"]["content"]) for c in stack.calls(
        "externalcontact/send_welcome_msg")]
    assert len(welcomes) == 2, welcomes
    assert "欢迎加入" in welcomes[0] and "很高兴为您服务" in welcomes[1], welcomes
    # a third add, through another guide, later: still once
    await _add(stack, "wangfang", "wmREACH1")
    enrolled = await _enrolled(stack, "wmREACH1")
    assert enrolled["each_nurture"] == ["lina", "zhou", "wangfang"]
    assert enrolled["once_nurture"] == ["lina"]

    # a tag marked through zhou enrolls the customer once in a reach="customer" tag SOP
    # (dormant_winback, the default reach, through zhou only: the tag names that relation)
    for guide in ("zhou", "lina"):
        status, body = await stack.admin("/customers/wmREACH1/tags", method="POST",
                                         json={"guide": guide, "add": ["沉睡客"]})
        assert status == 200, body
        await stack.runtime.drain()
    enrolled = await _enrolled(stack, "wmREACH1")
    assert enrolled["once_winback"] == ["zhou"]
    assert enrolled["dormant_winback"] == ["zhou", "lina"]

    # a manual enrolment through another guide finds the customer's enrollment
    status, first = await stack.admin("/sops/once_manual/enroll", method="POST",
                                      json={"external_userid": "wmREACH1", "guide": "lina"})
    assert status == 201 and first["created"] is True, first
    status, again = await stack.admin("/sops/once_manual/enroll", method="POST",
                                      json={"external_userid": "wmREACH1", "guide": "zhou"})
    assert status == 200, again
    assert (again["created"], again["enrollment_id"]) == (False, first["enrollment_id"])
    assert (await _enrolled(stack, "wmREACH1"))["once_manual"] == ["lina"]


async def test_two_adds_of_one_customer_in_one_burst_enroll_once(reach_stack: Stack) -> None:
    """Both callbacks are accepted before either is handled (one inbox batch)."""
    stack = reach_stack
    await _add(stack, "lina", "wmBURST1", drain=False)
    await _add(stack, "zhou", "wmBURST1", drain=False)
    await stack.runtime.drain()
    enrolled = await _enrolled(stack, "wmBURST1")
    assert sorted(enrolled["each_nurture"]) == ["lina", "zhou"]
    assert len(enrolled["once_nurture"]) == 1 and len(enrolled["once_welcome"]) == 1
    assert enrolled["once_nurture"][0] in ("lina", "zhou")


async def test_the_console_shows_the_reach(reach_stack: Stack) -> None:
    stack = reach_stack
    console = Console(stack)
    try:
        await console.login("acme", "acme-admin-token")
        status, html, _ = await console.get("/console/acme/sops")
        assert status == 200
        rows = {sop: html[html.index(f'<tr data-sop="{sop}">'):].split("</tr>", 1)[0]
                for sop in ("once_nurture", "each_nurture")}
        assert 'data-reach="customer"' in rows["once_nurture"]  # 每位客户一次
        assert "data-reach" not in rows["each_nurture"]
        for sop, reach in (("once_nurture", "customer"), ("each_nurture", "relation")):
            status, page, _ = await console.get(f"/console/acme/sops/{sop}")
            assert status == 200 and f'<p id="reach" data-reach="{reach}">' in page
    finally:
        await console.close()
    status, body = await stack.admin("/sops")
    assert status == 200
    reach = {s["id"]: s["trigger"]["reach"] for s in body["sops"]}
    assert (reach["once_nurture"], reach["each_nurture"]) == ("customer", "relation")


async def test_two_postgresql_transactions_enrolling_one_customer_take_turns(
        reach_stack: Stack) -> None:
    """Two processes enrolling one customer through two guides at once (PostgreSQL, READ
    COMMITTED): the second waits on the first's advisory lock and, once it commits, finds
    its row; without the lock both would insert. The wait is observed in pg_locks, not
    timed."""
    stack = reach_stack
    db = stack.runtime.services.db
    if db.is_sqlite:
        pytest.skip("SQLite has one writer: its transactions never overlap")
    now = utcnow()

    def row(guide: str) -> dict[str, Any]:
        return {"tenant": "acme", "sop_id": "once_nurture", "external_userid": "wmRACE1",
                "guide": guide, "store_id": None, "trigger_at": now, "status": "active",
                "reason": "", "version": 1, "next_step": 0, "next_at": now, "last_at": None}

    async def waiting() -> int:
        async with db.read() as s:
            return int((await s.execute(text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                "AND database = (SELECT oid FROM pg_database "
                "WHERE datname = current_database())"))).scalar_one())

    async with db.write() as first:
        made = await sop_plan.insert_enrollment(first, per_customer=True, **row("lina"))
        assert made is not None

        async def second() -> int | None:
            async with db.write() as s:
                return await sop_plan.insert_enrollment(s, per_customer=True, **row("zhou"))

        racing = asyncio.create_task(second())
        while not await waiting():  # the second transaction blocks on the lock
            assert not racing.done(), racing.result()
            await asyncio.sleep(0.01)
    assert await racing is None
    assert (await _enrolled(stack, "wmRACE1"))["once_nurture"] == ["lina"]
