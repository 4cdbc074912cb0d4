"""The one backoff configuration: how long to wait before retry number n, and how many tries
there are. The WeCom client (rate limits), the outbox (failed calls, inline while a deadline
allows) and the inbox (failed items) each hold one."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Waits between tries; `attempts` counts every try, the first too."""

    base_s: float = 0.5
    factor: float = 2.0
    max_s: float = 8.0
    attempts: int = 3
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.base_s < 0 or self.max_s < self.base_s or self.factor < 1:
            raise ValueError("need 0 <= base_s <= max_s and factor >= 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (1-based)."""
        raw = min(self.max_s, self.base_s * self.factor ** max(retry - 1, 0))
        return raw * random.uniform(1 - self.jitter, 1 + self.jitter)


WECOM_RATE_LIMIT = Backoff(base_s=0.5, factor=2.0, max_s=8.0, attempts=3, jitter=0.1)
OUTBOX_RETRY = Backoff(base_s=1.0, factor=2.0, max_s=300.0, attempts=5, jitter=0.2)
# Inline retries of a call with a deadline (the welcome's 20 s): 0.5 s, 1 s, 2 s, 2 s, …
OUTBOX_INLINE = Backoff(base_s=0.5, factor=2.0, max_s=2.0, attempts=5, jitter=0.0)
INBOX_RETRY = Backoff(base_s=1.0, factor=2.0, max_s=60.0, attempts=3, jitter=0.0)
