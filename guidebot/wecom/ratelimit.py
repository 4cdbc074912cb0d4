"""Per-tenant async token bucket that keeps WeCom API calls under the configured quota."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable


class RateLimiter:
    """A token bucket refilled at `rate_per_min`; callers over the budget wait their turn.

    The bucket holds `burst` tokens (default: one second's worth), so no 60 s window sees
    much more than `rate_per_min` calls. It is loop-agnostic: the reservation happens
    without awaiting, so no asyncio.Lock (bound to one loop) is needed.
    """

    def __init__(
        self,
        rate_per_min: float,
        *,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_per_min <= 0:
            raise ValueError("rate_per_min must be positive")
        self.rate_per_min = rate_per_min
        self.burst = burst if burst is not None else max(1, math.ceil(rate_per_min / 60))
        if self.burst < 1:
            raise ValueError("burst must be at least 1")
        self._per_s = rate_per_min / 60.0
        self._clock = clock
        self._tokens = float(self.burst)
        self._updated = clock()

    def reserve(self) -> float:
        """Take one token now; return how many seconds the caller must wait before using it."""
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self._per_s)
        self._updated = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self._per_s

    async def acquire(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)


_SHARED: dict[tuple[str, float], RateLimiter] = {}


def shared_limiter(key: str, rate_per_min: float) -> RateLimiter:
    """The process-wide limiter for `key` (a tenant id), so every client of a tenant shares it."""
    limiter = _SHARED.get((key, rate_per_min))
    if limiter is None:
        limiter = _SHARED[(key, rate_per_min)] = RateLimiter(rate_per_min)
    return limiter
