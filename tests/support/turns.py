"""Counting turns of the running event loop, for tests of what happens in one turn."""

from __future__ import annotations

import asyncio


class TurnCounter:
    """Counts turns of the running loop: a callback that puts itself back each turn."""

    def __init__(self) -> None:
        self.turn = 0
        self._handle: asyncio.Handle | None = None

    def start(self) -> None:
        self._handle = asyncio.get_running_loop().call_soon(self._tick)

    def _tick(self) -> None:
        self.turn += 1
        self._handle = asyncio.get_running_loop().call_soon(self._tick)

    def stop(self) -> None:
        assert self._handle is not None
        self._handle.cancel()
