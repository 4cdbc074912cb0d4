"""Whether events are arriving at burst rates (a campaign's adds, a store backend's order
flood): callbacks and order events are noted as they arrive, counted per second over a short
window. Background work that can wait (the console's statistics job) waits out a burst, so
its transactions do not hold SQLite's writer while acknowledgements queue behind it."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

BURST_RATE = 20.0  # arrivals per second, averaged over the window, that make a burst
WINDOW_S = 3


class Arrivals:
    def __init__(self, *, rate: float = BURST_RATE, window_s: int = WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._rate, self._window, self._clock = rate, window_s, clock
        self._seconds: deque[list[int]] = deque()  # [second, arrivals in it], oldest first

    def note(self) -> None:
        """One event arrived (a few hundred nanoseconds: it sits on the acknowledgement path)."""
        second = int(self._clock())
        if self._seconds and self._seconds[-1][0] == second:
            self._seconds[-1][1] += 1
            return
        self._seconds.append([second, 1])
        self._forget(second)

    def recent(self) -> int:
        """Arrivals in the last `window_s` seconds (this one included)."""
        self._forget(int(self._clock()))
        return sum(count for _, count in self._seconds)

    @property
    def window_s(self) -> int:
        return self._window

    def bursting(self) -> bool:
        return self.recent() >= self._rate * self._window

    def _forget(self, now: int) -> None:
        while self._seconds and self._seconds[0][0] <= now - self._window:
            self._seconds.popleft()
