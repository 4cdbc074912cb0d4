"""Urgent work first: acknowledgements, then the part of an event that cannot wait (a welcome
has 20 s), then everything else.

A handler calls `await later()` where its urgent part ends: from there on its database writes
queue behind urgent ones (SQLite has one writer) and the inbox processor stops counting it
against the items it claims, so a burst's welcomes are not stuck behind the burst's profile
fetches, SOP enrolments and tags. Jobs run in the later lane from the start.

The event loop is shared too. Hundreds of handling tasks resume together when a shared
transaction commits or WeCom answers a wave of calls, and one turn of the loop runs every
ready task once: an acknowledgement waiting for its next step waits for that whole turn,
several times per callback. `Turns` gives handling a budget of steps per turn of the loop: a
handling task passes `await turn()` where such a wave ends (its item starts, a shared
transaction committed, WeCom answered) and, past the budget, goes on in a later turn, urgent
work before follow-ups. Nothing waits longer than the turns the queue ahead of it needs (no
timer), so a task that waits for its turn while it holds a lock delays the others but never
deadlocks them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from enum import IntEnum


class Lane(IntEnum):
    ACK = 0     # storing a callback its 200 waits for
    NOW = 1     # the urgent part of handling an event (the default)
    LATER = 2   # follow-ups and jobs


_LANE: ContextVar[Lane] = ContextVar("lane", default=Lane.NOW)
_ON_LATER: ContextVar[Callable[[], Awaitable[None]] | None] = ContextVar("on_later",
                                                                         default=None)
_TURNS: ContextVar[Turns | None] = ContextVar("turns", default=None)
_OFF_LOOP: ContextVar[bool] = ContextVar("off_loop", default=False)


def current() -> Lane:
    return _LANE.get()


async def later() -> None:
    """The rest of this task may wait for urgent work; waits for a follow-up turn."""
    if _LANE.get() is Lane.LATER:
        return
    _LANE.set(Lane.LATER)
    on_later = _ON_LATER.get()
    if on_later is not None:
        await on_later()


def off_loop() -> bool:
    """Whether this task's SQLite work runs on aiosqlite's thread (jobs and bulk operations,
    whose statements may be long) rather than inline on the loop (guidebot/db/inline.py)."""
    return _OFF_LOOP.get()


def run_later() -> None:
    """This task (a job) is background work from the start, its statements off the loop."""
    _LANE.set(Lane.LATER)
    _OFF_LOOP.set(True)


def background() -> contextlib.AbstractContextManager[None]:
    """Run a block as background work (a bulk operation: long statements on aiosqlite's
    thread, never inline on the loop), whatever lane the caller is in."""
    return running_as(Lane.LATER, off_loop=True)


@contextlib.contextmanager
def running_as(lane: Lane, *, off_loop: bool | None = None) -> Iterator[None]:
    """Run a block in `lane` (work done on behalf of callers from that lane). The urgent
    lanes run on the loop; the later lane keeps the caller's choice unless `off_loop` says."""
    if off_loop is None:
        off_loop = _OFF_LOOP.get() if lane is Lane.LATER else False
    lane_token, off_loop_token = _LANE.set(lane), _OFF_LOOP.set(off_loop)
    try:
        yield
    finally:
        _OFF_LOOP.reset(off_loop_token)
        _LANE.reset(lane_token)


def urgent() -> contextlib.AbstractContextManager[None]:
    """Run a block as the urgent part of work (Lane.NOW), whatever lane the caller is in."""
    return running_as(Lane.NOW)


def on_later(callback: Callable[[], Awaitable[None]]) -> None:
    """Set by the inbox processor in an item's task: what `later()` does besides the lane."""
    _ON_LATER.set(callback)


class Turns:
    """How many handling steps start in one turn of the event loop: `per_turn`, or
    `per_turn_acking` while callbacks wait for their acknowledgement (`acknowledging()`).

    `take()` returns at once while this turn's budget lasts and nobody is queued; otherwise
    the caller queues (urgent lanes before later, each in arrival order) and a pump, run once
    per turn while anyone is queued or passed, lets the next ones through."""

    def __init__(self, per_turn: int = 64, per_turn_acking: int = 4) -> None:
        if min(per_turn, per_turn_acking) < 1:
            raise ValueError("a turn must let at least one step through")
        self.per_turn = per_turn
        self.per_turn_acking = per_turn_acking
        self._acking = 0
        self._used = 0
        self._queued: tuple[deque[asyncio.Future[None]], deque[asyncio.Future[None]]] = (
            deque(), deque())
        self._pump_scheduled = False

    @contextlib.contextmanager
    def acknowledging(self) -> Iterator[None]:
        """A callback is being stored for its acknowledgement: handling yields the loop."""
        self._acking += 1
        try:
            yield
        finally:
            self._acking -= 1

    def _limit(self) -> int:
        return self.per_turn_acking if self._acking else self.per_turn

    async def take(self, lane: Lane) -> None:
        if self._used < self._limit() and not (self._queued[0] or self._queued[1]):
            self._used += 1
            self._schedule_pump()
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued[1 if lane is Lane.LATER else 0].append(future)
        self._schedule_pump()
        await future  # cancelled while queued: the pump skips the done future

    def _schedule_pump(self) -> None:
        if not self._pump_scheduled:
            self._pump_scheduled = True
            asyncio.get_running_loop().call_soon(self._pump)

    def _pump(self) -> None:
        """A new turn: the budget is fresh; the queued go first."""
        self._pump_scheduled = False
        self._used = 0
        limit = self._limit()
        for queue in self._queued:
            while queue and self._used < limit:
                future = queue.popleft()
                if not future.done():
                    future.set_result(None)
                    self._used += 1
        if self._used or self._queued[0] or self._queued[1]:
            self._schedule_pump()


def take_turns(turns: Turns) -> None:
    """Set by the inbox processor in an item's task: its steps count against `turns`."""
    _TURNS.set(turns)


async def turn() -> None:
    """A handling task is about to compute after a wait that ends for many tasks at once (its
    item starts, a shared transaction committed, WeCom answered): wait for a step of this
    turn's budget. No-op outside handling."""
    turns = _TURNS.get()
    if turns is not None:
        await turns.take(_LANE.get())
