"""A channel code's turn over HTTP against the sandbox: HQ's edit and 自动通过好友's window
edge changing one code at the same moment leave the database holding what WeCom was last
told; an outbox retry of the rotation's update_contact_way waits for the code's turn; many
turns at once on PostgreSQL hold at most a few lock connections, so the pool never runs dry.
The clock is the test's (Asia/Shanghai, UTC+8), never the real time of day."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import text, update

from guidebot import lanes
from guidebot.contacts.channels import code_turn
from guidebot.db.models import OutboxItem
from guidebot.db.repo import sop_tasks as job_state
from guidebot.errors import WeComTransportError
from tests.support.stack import Stack, known

T = TypeVar("T")
NOON = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
WAY = "externalcontact/update_contact_way"


async def _as_job(work: Awaitable[T]) -> T:
    """`work` as the scheduler's jobs run (SQLite statements off the loop)."""
    lanes.run_later()
    return await work


async def _until(done: Callable[[], bool]) -> None:
    """Yields to the loop until `done()` (no assertion rests on how long that takes)."""
    while not done():
        await asyncio.sleep(0.01)


def _name(code_id: int) -> str:
    return f"channel-code:acme:{code_id}"


async def _listed(stack: Stack, code_id: int) -> dict[str, Any]:
    _, listed = await stack.admin("/channels")
    return next(c for c in listed["channels"] if c["id"] == code_id)


def _sent(stack: Stack) -> list[dict[str, Any]]:
    return [c["body"] for c in stack.calls(WAY) if c["errcode"] == 0]


async def test_an_edit_and_a_window_edge_at_once_leave_the_database_as_wecom_was_told(
        stack: Stack) -> None:
    await known(stack, guides=("lina", "wang"))
    services = stack.runtime.services
    accept = services.channel_auto_accept
    accept.clock = lambda: NOON - timedelta(hours=1)  # 11:00: inside the window
    status, code = await stack.admin("/channels", method="POST", json={
        "guides": ["lina", "wang"], "campaign": "门店活码", "auto_accept_hours": "09:00-12:00"})
    assert status == 201, code
    client = services.clients["acme"]
    real = client.update_contact_way
    told, go = asyncio.Event(), asyncio.Event()

    async def held_after_the_call(**body: Any) -> dict[str, Any]:
        """The edit's call reaches WeCom; the edit then waits before storing anything."""
        answer = await real(**body)
        if not told.is_set():
            told.set()
            await go.wait()
        return answer

    client.update_contact_way = held_after_the_call  # type: ignore[method-assign]
    edit = asyncio.create_task(stack.admin(f"/channels/{code['id']}", method="PATCH",
                                           json={"campaign": "冬季活码"}))
    await _until(lambda: told.is_set() or edit.done())
    assert told.is_set(), edit
    accept.clock = lambda: NOON  # 12:00: the window has just ended
    edge = asyncio.create_task(_as_job(accept.refresh_all("acme")))
    await _until(lambda: edge.done() or job_state.waiting(services.db.engine,
                                                          _name(code["id"])) > 0)
    assert not edge.done()  # the window's edge waits for the edit's turn
    go.set()
    status, edited = await edit
    assert status == 200, edited
    assert await edge == 1
    assert [(b["remark"], b["skip_verify"]) for b in _sent(stack)] == [
        ("冬季活码", True), ("冬季活码", False)]  # the edit's, then the edge's on top of it
    way = stack.sandbox.tenant("acme").contact_ways[code["config_id"]].body
    listed = await _listed(stack, code["id"])
    assert (listed["serving"], listed["skip_verify_now"]) == (way["user"], way["skip_verify"])
    assert (listed["campaign"], way["skip_verify"]) == ("冬季活码", False)


async def test_an_outbox_retry_of_a_rotation_send_waits_for_the_codes_turn(
        stack: Stack) -> None:
    await known(stack, guides=("lina", "wang", "zhou"))
    services = stack.runtime.services
    rotation = services.channel_rotation
    rotation.clock = lambda: NOON + timedelta(days=1)  # the adds are not that day's: no call
    status, code = await stack.admin("/channels", method="POST", json={
        "guides": ["lina", "wang"], "backup_guides": ["zhou"], "daily_limit": 2})
    assert status == 201, code
    for i in range(2):  # the sandbox gives an add to the first member offered: lina
        await stack.sandbox.simulate_add_contact(
            "acme", config_id=code["config_id"], name=f"客户{i}",
            create_time=int((NOON + timedelta(minutes=i)).timestamp()))
        await stack.runtime.drain()
    assert _sent(stack) == []
    rotation.clock = lambda: NOON
    client = services.clients["acme"]
    real = client.update_contact_way

    async def unreachable_once(**body: Any) -> dict[str, Any]:
        client.update_contact_way = real  # type: ignore[method-assign]
        raise WeComTransportError(None, "connection reset", path=WAY)

    client.update_contact_way = unreachable_once  # type: ignore[method-assign]
    assert await rotation.recheck("acme", code["id"]) is True  # asked; the call failed
    assert _sent(stack) == []
    async with services.db.write() as s:  # the retry's time has come
        await s.execute(update(OutboxItem).where(OutboxItem.kind == "channel_serving")
                        .values(due_at=NOON - timedelta(days=1)))

    held, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with code_turn(services.db, "acme", code["id"]):
            held.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await held.wait()
    retry = asyncio.create_task(_as_job(services.outbox.retry_due(services.calls)))
    await _until(lambda: retry.done() or job_state.waiting(services.db.engine,
                                                           _name(code["id"])) > 0)
    assert not retry.done() and _sent(stack) == []  # waiting for the turn, nothing sent
    release.set()
    await holder
    assert await retry == 1
    assert [b["user"] for b in _sent(stack)] == [["wang"]]
    assert stack.sandbox.tenant("acme").contact_ways[code["config_id"]].body["user"] == [
        "wang"]


async def test_many_turns_at_once_hold_few_lock_connections(stack: Stack) -> None:
    db = stack.runtime.services.db
    names = [f"test-burst:{i}" for i in range(40)]
    postgres = not db.is_sqlite
    # PostgreSQL: LOCK_CONNECTIONS hold a lock connection at once; SQLite takes none, so
    # every turn of distinct names runs at once.
    most = job_state.LOCK_CONNECTIONS if postgres else len(names)
    keys = [job_state._lock_key(n) for n in names]  # the burst's advisory locks, no other
    inside, peak, full = 0, 0, asyncio.Event()

    async def one(name: str) -> int:
        nonlocal inside, peak
        async with job_state.turn(db.engine, name):
            inside += 1
            peak = max(peak, inside)
            if inside == most:
                full.set()
            await full.wait()  # the first ones stay until as many as may are inside
            async with db.read() as s:  # the work of a turn takes connections of its own
                locks = 0
                if postgres:
                    locks = int((await s.execute(text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                        " AND database = (SELECT oid FROM pg_database"
                        " WHERE datname = current_database()) AND objid::text::bigint"
                        " = ANY(:keys)"), {"keys": keys})).scalar_one())
            async with db.write() as s:
                await s.execute(text("SELECT 1"))
            inside -= 1
            return locks

    locks = await asyncio.gather(*(one(n) for n in names))
    assert peak == most
    assert max(locks) == (job_state.LOCK_CONNECTIONS if postgres else 0)
