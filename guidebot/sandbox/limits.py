"""Rolling one-minute counters for WeCom's per-minute frequency limits."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Hashable

WINDOW_S = 60.0


class MinuteWindow:
    """Counts events per key over the last minute; `hit` records one if under the limit."""

    def __init__(self) -> None:
        self._events: dict[Hashable, deque[float]] = defaultdict(deque)

    def _recent(self, key: Hashable, now: float) -> deque[float]:
        events = self._events[key]
        while events and events[0] <= now - WINDOW_S:
            events.popleft()
        return events

    def hit(self, key: Hashable, now: float, limit: int) -> bool:
        events = self._recent(key, now)
        if len(events) >= limit:
            return False
        events.append(now)
        return True


class Interceptor:
    """45009 semantics: once a key goes over its limit it stays blocked for a full window.

    FACTS §3.13: "Interception lasts for the window length".
    """

    def __init__(self) -> None:
        self._window = MinuteWindow()
        self._blocked_until: dict[Hashable, float] = {}

    def allow(self, key: Hashable, now: float, limit: int) -> bool:
        if now < self._blocked_until.get(key, 0.0):
            return False
        if self._window.hit(key, now, limit):
            return True
        self._blocked_until[key] = now + WINDOW_S
        return False
