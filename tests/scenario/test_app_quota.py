"""One app message budget per guide (`app_msg_per_guide_per_min`, 3 here; the sandbox drops a
member's messages over it like WeCom): answers to a guide's commands (real encrypted app chat
callbacks), 删人提醒 (real del_follow_user callbacks) and SOP notifications all draw from it;
over it a message is held by the outbox and sent once the minute frees, never dropped; two
senders at once, or two processes' worth of connections, never take more than the quota."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from guidebot import outbox
from guidebot.app_quota import PRUNE_AFTER, AppQuota
from guidebot.db.engine import Database
from guidebot.db.models import AppMessageSend, OutboxItem
from guidebot.db.models_sop import SopTask
from guidebot.db.repo import sop_tasks
from guidebot.outbox import Postponed
from tests.support.console import Console
from tests.support.metrics import scrape, value
from tests.support.stack import Stack, start_stack

QUOTA = 3
CONFIG = f"\n[tenants.acme.quotas]\napp_msg_per_guide_per_min = {QUOTA}\n"
_ids = itertools.count(1)


@pytest.fixture
async def quota_stack(aiohttp_server: Any, tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    s = await start_stack(aiohttp_server, tmp_path, db_url, config_extra=CONFIG)
    yield s
    await s.http.close()


class Clocks:
    """guidebot's clocks (the budget's, the outbox's, the SOP machinery's) and the sandbox's,
    moved together."""

    def __init__(self, stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
        self.stack, self.now = stack, datetime.now(UTC)
        services = stack.runtime.services
        services.app_quota.clock = lambda: self.now
        services.sop.clock = lambda: self.now
        monkeypatch.setattr(outbox, "utcnow", lambda: self.now)

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.stack.sandbox.advance_clock(seconds)


@pytest.fixture
def clocks(quota_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Clocks]:
    yield Clocks(quota_stack, monkeypatch)


async def _command(stack: Stack, text: str, guide: str = "lina") -> None:
    """The guide writes to the app (a real encrypted callback); not waited for."""
    fields = {"MsgType": "text", "FromUserName": guide, "Content": text,
              "MsgId": str(8_000_000 + next(_ids)), "AgentID": "1000002"}
    async with stack.http.post(f"{stack.sandbox_url}/_sandbox/acme/simulate/event",
                               json={"fields": fields}) as resp:
        answer = await resp.json()
    assert answer["delivery"]["status"] == 200, answer


def _received(stack: Stack, guide: str = "lina") -> list[dict[str, Any]]:
    return [m for m in stack.sandbox.state("acme")["app_messages"] if m["userid"] == guide]


def _none_dropped(stack: Stack) -> bool:
    return not any(m["dropped"] for m in stack.sandbox.state("acme")["app_messages"])


async def _rows(stack: Stack, kind: str) -> list[OutboxItem]:
    async with stack.runtime.services.db.read() as s:
        stmt = select(OutboxItem).where(OutboxItem.kind == kind).order_by(OutboxItem.id)
        return list((await s.execute(stmt)).scalars())


async def _sends(stack: Stack) -> int:
    async with stack.runtime.services.db.read() as s:
        return int((await s.execute(select(func.count()).select_from(AppMessageSend)))
                   .scalar_one())


async def _retry(stack: Stack) -> int:
    services = stack.runtime.services
    return await services.outbox.retry_due(services.calls)


async def _queue_notifications(stack: Stack, count: int, at: datetime) -> None:
    async with stack.runtime.services.db.write() as s:
        for _ in range(count):
            await sop_tasks.insert_task(
                s, tenant="acme", key=f"notify:quota{next(_ids)}", kind="notify",
                source="sop:new_customer_nurture", guide="lina", message="sop_notify_guide",
                recipients=1, status="queued", now=at)


async def test_command_answers_over_the_budget_wait_for_the_minute_and_are_not_dropped(
        quota_stack: Stack, clocks: Clocks) -> None:
    stack = quota_stack
    for _ in range(QUOTA + 2):
        await _command(stack, "今日任务")
    await stack.runtime.drain()
    assert len(_received(stack)) == QUOTA and _none_dropped(stack)
    rows = await _rows(stack, "app_text")
    assert sorted(r.status for r in rows) == ["done"] * QUOTA + ["failed"] * 2
    held = [r for r in rows if r.status == "failed"]
    for row in held:  # held, not a failed attempt: nothing counted towards a dead letter
        assert row.attempts == 0 and row.last_error.startswith("quota: "), row.last_error
        assert clocks.now < row.due_at <= clocks.now + timedelta(seconds=60)
        assert "今日" not in row.last_error  # ids and numbers, never the text
    assert await _retry(stack) == 0  # not due within the minute
    assert len(_received(stack)) == QUOTA
    console = Console(stack)  # HQ's outbox page says they wait for the limit, not failed
    try:
        await console.login("acme", "acme-admin-token")
        status, html, _ = await console.get("/console/acme/outbox")
        assert status == 200 and html.count("等待限额") == 2
    finally:
        await console.close()
    metrics = await scrape(stack)  # held, not failed, for whoever watches /metrics
    assert value(metrics, "guidebot_outbox_rows", tenant="acme", state="held") == 2
    assert value(metrics, "guidebot_outbox_rows", tenant="acme", state="failed") == 0

    clocks.advance(61)
    assert await _retry(stack) == 2
    assert len(_received(stack)) == QUOTA + 2 and _none_dropped(stack)
    assert [(r.status, r.attempts) for r in await _rows(stack, "app_text")] \
        == [("done", 1)] * (QUOTA + 2)
    assert await _retry(stack) == 0
    assert len(stack.calls("message/send")) == QUOTA + 2  # each sent once


async def test_churn_notices_share_the_budget(quota_stack: Stack, clocks: Clocks) -> None:
    stack = quota_stack
    customers = []
    for i in range(QUOTA + 1):
        added = await stack.sandbox.simulate_add_contact("acme", userid="lina", name=f"客{i}")
        customers.append(str(added["external_userid"]))
    await stack.runtime.drain()
    await _command(stack, "今日任务")  # one answer first: two notices fit the minute
    await stack.runtime.drain()
    for customer in customers:
        answer = await stack.sandbox.simulate_event("acme", {
            "Event": "change_external_contact", "ChangeType": "del_follow_user",
            "UserID": "lina", "ExternalUserID": customer})
        assert answer["delivery"]["status"] == 200
    await stack.runtime.drain()
    assert len(_received(stack)) == QUOTA and _none_dropped(stack)
    assert sorted(r.status for r in await _rows(stack, "churn_notify")) \
        == ["done"] * (QUOTA - 1) + ["failed"] * 2

    clocks.advance(61)
    assert await _retry(stack) == 2
    assert len(_received(stack)) == QUOTA + 2 and _none_dropped(stack)
    assert {r.status for r in await _rows(stack, "churn_notify")} == {"done"}


async def test_sop_notifications_and_other_messages_share_the_budget(
        quota_stack: Stack, clocks: Clocks) -> None:
    stack = quota_stack
    dispatcher = stack.runtime.services.sop.dispatcher
    await _queue_notifications(stack, 2, clocks.now)
    await dispatcher.run("acme")
    assert len(_received(stack)) == 2  # the SOP's two of the three
    await _command(stack, "今日任务")
    await _command(stack, "今日任务")
    await stack.runtime.drain()
    assert len(_received(stack)) == QUOTA  # one answer went, one is held
    assert sorted(r.status for r in await _rows(stack, "app_text")) == ["done", "failed"]
    await _queue_notifications(stack, 2, clocks.now)
    await dispatcher.run("acme")  # no room: the SOP's tasks wait in the queue
    assert len(_received(stack)) == QUOTA and _none_dropped(stack)
    async with stack.runtime.services.db.read() as s:
        queued = await s.execute(select(func.count()).select_from(SopTask).where(
            SopTask.status == "queued"))
        assert queued.scalar_one() == 2

    clocks.advance(61)
    await dispatcher.run("acme")  # the two notifications take two slots of the new minute
    assert await _retry(stack) == 1  # the held answer the third
    assert len(_received(stack)) == QUOTA * 2 - 1 + 1 and _none_dropped(stack)
    assert {r.status for r in await _rows(stack, "app_text")} == {"done"}


async def test_two_senders_at_once_never_take_more_than_the_quota(
        quota_stack: Stack, clocks: Clocks, db_url: str) -> None:
    stack = quota_stack
    services = stack.runtime.services
    # another process's connections to the same database (PostgreSQL: advisory locks decide)
    other_db = Database(db_url)
    other = AppQuota(other_db, lambda tenant: QUOTA, clock=lambda: clocks.now)
    try:
        slots = await asyncio.gather(*(q.take("acme", ["lina"]) for q in
                                       [services.app_quota, other] * 5))
    finally:
        await other_db.dispose()
    assert sum(s.taken for s in slots) == QUOTA
    assert {s.free_at for s in slots if not s.taken} == {clocks.now + timedelta(seconds=60)}
    assert await _sends(stack) == QUOTA

    clocks.advance(61)  # the dispatcher and command answers at once
    await _queue_notifications(stack, 3, clocks.now)
    await asyncio.gather(*(services.outbox.run(
        tenant="acme", key=f"quota-test:{i}", kind="app_text", call=services.guide_chat.send,
        payload={"touser": "lina", "msgtype": "text", "text": {"content": f"答{i}"}})
        for i in range(3)), services.sop.dispatcher.run("acme"))
    assert len(_received(stack)) == QUOTA and _none_dropped(stack)


async def test_several_recipients_take_a_slot_each_or_none_and_old_rows_are_pruned(
        quota_stack: Stack, clocks: Clocks) -> None:
    stack = quota_stack
    quota = stack.runtime.services.app_quota
    for _ in range(QUOTA):
        await quota.hold("acme", {"touser": "zhaolei"})
    with pytest.raises(Postponed) as held:
        await quota.hold("acme", {"touser": "lina|zhaolei"})
    assert held.value.until == clocks.now + timedelta(seconds=60)
    assert held.value.reason.startswith("quota: ") and "lina|zhaolei" in held.value.reason
    assert await _sends(stack) == QUOTA  # nothing taken for lina either
    await quota.hold("acme", {"touser": "lina|wangfang"})
    await quota.hold("acme", {"touser": "@all"})  # guidebot never sends one: not counted
    assert await _sends(stack) == QUOTA + 2

    clocks.advance(PRUNE_AFTER.total_seconds() + 1)
    await quota.hold("acme", {"touser": "zhaolei"})  # prunes zhaolei's old rows
    assert await _sends(stack) == 2 + 1
