"""The SQLite writer lock: urgent waiters first, FIFO otherwise, cancellation-safe."""

from __future__ import annotations

import asyncio

from guidebot.db.engine import PriorityLock


async def test_urgent_waiters_go_first_then_fifo() -> None:
    lock, order = PriorityLock(), []

    async def take(name: str, urgent: bool) -> None:
        async with lock.hold(0 if urgent else 1):
            order.append(name)
            await asyncio.sleep(0)

    async with lock.hold():
        tasks = [asyncio.create_task(take(n, u)) for n, u in
                 [("a", False), ("b", False), ("U1", True), ("c", False), ("U2", True)]]
        await asyncio.sleep(0.01)
    await asyncio.gather(*tasks)
    assert order == ["U1", "U2", "a", "b", "c"]


async def test_cancelled_waiters_never_block_or_break_the_lock() -> None:
    lock = PriorityLock()
    entered = []

    async def take(name: str) -> None:
        async with lock.hold():
            entered.append(name)

    async with lock.hold():
        doomed = asyncio.create_task(take("doomed"))
        later = asyncio.create_task(take("later"))
        await asyncio.sleep(0.01)
        doomed.cancel()
        await asyncio.sleep(0)
    await asyncio.wait_for(later, 1)
    assert entered == ["later"]
    assert doomed.cancelled()
    async with lock.hold(0):  # the lock is free again
        entered.append("again")
    assert entered == ["later", "again"]


async def test_cancel_after_handover_passes_the_lock_on() -> None:
    lock = PriorityLock()
    entered = []

    async def take(name: str) -> None:
        async with lock.hold():
            entered.append(name)

    first = asyncio.create_task(take("first"))
    async with lock.hold():
        pass  # not contended yet: `first` has not run
    await first
    async with lock.hold():
        handed = asyncio.create_task(take("handed"))
        nxt = asyncio.create_task(take("next"))
        await asyncio.sleep(0.01)
    handed.cancel()  # ownership was just handed to it; it must pass it on
    await asyncio.wait_for(nxt, 1)
    assert "next" in entered


async def test_three_lanes_acks_then_urgent_work_then_follow_ups() -> None:
    lock, order = PriorityLock(), []

    async def take(name: str, level: int) -> None:
        async with lock.hold(level):
            order.append(name)
            await asyncio.sleep(0)

    async with lock.hold():
        tasks = [asyncio.create_task(take(n, level)) for n, level in
                 [("later1", 2), ("now1", 1), ("ack1", 0), ("later2", 2), ("now2", 1)]]
        await asyncio.sleep(0.01)
    await asyncio.gather(*tasks)
    assert order == ["ack1", "now1", "now2", "later1", "later2"]


async def test_a_release_lets_waiters_that_do_not_suspend_all_go_in_one_loop_turn() -> None:
    """Inline SQLite writes never suspend while they hold the lock: after a release a batch
    of them runs back to back, instead of one per turn of the event loop."""
    lock, entered = PriorityLock(), []

    async def take(i: int) -> None:
        async with lock.hold():
            entered.append(i)  # no await while held

    async with lock.hold():
        tasks = [asyncio.create_task(take(i)) for i in range(50)]
        await asyncio.sleep(0.01)  # all queued
    turns = 0
    while len(entered) < 50 and turns < 50:
        await asyncio.sleep(0)
        turns += 1
    assert entered == list(range(50))  # FIFO kept
    assert turns <= 3  # a strict hand-over needs one turn per waiter: 50
    await asyncio.gather(*tasks)
