"""Urgent work first: acknowledgements, then the part of an event that cannot wait (a welcome
has 20 s), then everything else.

A handler calls `await later()` where its urgent part ends: from there on its database writes
queue behind urgent ones (SQLite has one writer) and the inbox processor stops counting it
against the items it claims, so a burst's welcomes are not stuck behind the burst's profile
fetches, SOP enrolments and tags. Jobs run in the later lane from the start.
"""

from __future__ import annotations

import contextlib
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


def run_later() -> None:
    """This task (a job) is background work from the start."""
    _LANE.set(Lane.LATER)


def background() -> contextlib.AbstractContextManager[None]:
    """Run a block as background work (a bulk operation: long statements on aiosqlite's
    thread, never inline on the loop), whatever lane the caller is in."""
    return running_as(Lane.LATER)


@contextlib.contextmanager
def running_as(lane: Lane) -> Iterator[None]:
    """Run a block in `lane` (work done on behalf of callers from that lane)."""
    token = _LANE.set(lane)
    try:
        yield
    finally:
        _LANE.reset(token)


def urgent() -> contextlib.AbstractContextManager[None]:
    """Run a block as the urgent part of work (Lane.NOW), whatever lane the caller is in."""
    return running_as(Lane.NOW)


def on_later(callback: Callable[[], Awaitable[None]]) -> None:
    """Set by the inbox processor in an item's task: what `later()` does besides the lane."""
    _ON_LATER.set(callback)
