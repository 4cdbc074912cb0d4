"""guidebot/lanes.py: how many handling steps start in one turn of the event loop (Turns), and
which work runs off the loop."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from guidebot.lanes import Lane, Turns
from tests.support.turns import TurnCounter


async def _passes(turns: Turns, count: int, lane: Lane = Lane.NOW,
                  counter: TurnCounter | None = None) -> list[int]:
    """The turn in which each of `count` tasks started at once got through `take`."""
    counter = counter or TurnCounter()
    counter.start()
    passed: list[int] = []

    async def one() -> None:
        await turns.take(lane)
        passed.append(counter.turn)

    await asyncio.gather(*(one() for _ in range(count)))
    counter.stop()
    return passed


async def test_a_turn_lets_at_most_per_turn_steps_through_and_every_step_passes() -> None:
    passed = await _passes(Turns(per_turn=8, per_turn_acking=2), 50)
    per_turn = Counter(passed)
    assert len(passed) == 50
    assert max(per_turn.values()) == 8
    assert len(per_turn) == 7  # 50 steps at 8 a turn


async def test_while_callbacks_are_acknowledged_fewer_steps_go_through() -> None:
    turns = Turns(per_turn=8, per_turn_acking=2)
    with turns.acknowledging():
        passed = await _passes(turns, 20)
    assert max(Counter(passed).values()) == 2
    assert len(Counter(passed)) == 10
    passed = await _passes(turns, 20)  # acknowledged: the wider budget is back
    assert max(Counter(passed).values()) == 8


async def test_nested_acknowledgements_count_until_the_last_ends() -> None:
    turns = Turns(per_turn=8, per_turn_acking=1)
    with turns.acknowledging():
        with turns.acknowledging():
            pass
        passed = await _passes(turns, 6)
    assert max(Counter(passed).values()) == 1


async def test_within_the_budget_a_step_does_not_wait_for_a_turn() -> None:
    turns, counter = Turns(per_turn=4, per_turn_acking=1), TurnCounter()
    counter.start()
    await asyncio.sleep(0)
    before = counter.turn
    for _ in range(4):
        await turns.take(Lane.NOW)
    assert counter.turn == before  # no suspension: still the same turn
    await turns.take(Lane.NOW)  # the fifth waits for the next turn
    assert counter.turn > before
    counter.stop()


async def test_urgent_steps_go_before_follow_ups_queued_earlier() -> None:
    turns, order = Turns(per_turn=2, per_turn_acking=1), []

    async def step(name: str, lane: Lane) -> None:
        await turns.take(lane)
        order.append(name)

    # Started together: the first two use the turn's budget, the follow-ups queue first.
    await asyncio.gather(
        *(step(f"first{i}", Lane.NOW) for i in range(2)),
        *(step(f"later{i}", Lane.LATER) for i in range(3)),
        *(step(f"now{i}", Lane.NOW) for i in range(3)))
    assert order == ["first0", "first1", "now0", "now1", "now2", "later0", "later1", "later2"]


async def test_a_step_cancelled_while_queued_leaves_no_hole_in_the_budget() -> None:
    turns, counter = Turns(per_turn=2, per_turn_acking=1), TurnCounter()
    counter.start()
    passed: list[int] = []

    async def one() -> None:
        await turns.take(Lane.NOW)
        passed.append(counter.turn)

    fillers = [asyncio.create_task(one()) for _ in range(2)]  # they use the turn's budget
    gone = asyncio.create_task(turns.take(Lane.NOW))
    rest = [asyncio.create_task(one()) for _ in range(4)]
    await asyncio.sleep(0)  # all of them have run up to `take`: `gone` is queued
    assert not gone.done()
    gone.cancel()
    await asyncio.gather(*fillers, *rest)
    with pytest.raises(asyncio.CancelledError):
        await gone
    counter.stop()
    assert sorted(Counter(passed).values()) == [2, 2, 2]  # the cancelled one took no place


def test_a_turn_must_let_a_step_through() -> None:
    with pytest.raises(ValueError):
        Turns(per_turn=0)
    with pytest.raises(ValueError):
        Turns(per_turn=4, per_turn_acking=0)


async def test_background_work_is_off_the_loop_and_urgent_work_inside_it_is_not() -> None:
    from guidebot import lanes

    assert (lanes.current(), lanes.off_loop()) == (Lane.NOW, False)
    with lanes.background():
        assert (lanes.current(), lanes.off_loop()) == (Lane.LATER, True)
        with lanes.urgent():
            assert (lanes.current(), lanes.off_loop()) == (Lane.NOW, False)
        with lanes.running_as(Lane.LATER):  # the later lane keeps the caller's choice
            assert lanes.off_loop() is True
        assert (lanes.current(), lanes.off_loop()) == (Lane.LATER, True)
    assert (lanes.current(), lanes.off_loop()) == (Lane.NOW, False)
    await lanes.later()  # an event's follow-ups: later, still on the loop
    assert (lanes.current(), lanes.off_loop()) == (Lane.LATER, False)
