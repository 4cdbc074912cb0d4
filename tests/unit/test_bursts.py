"""Arrivals counted per second over a short window: a burst is the window's average rate."""

from __future__ import annotations

from guidebot.bursts import Arrivals


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_the_rate_over_the_window() -> None:
    clock = Clock()
    arrivals = Arrivals(rate=20, window_s=3, clock=clock)
    for _ in range(59):
        arrivals.note()
    assert arrivals.recent() == 59 and not arrivals.bursting()
    arrivals.note()
    assert arrivals.bursting()  # 60 in 3 s: 20 a second
    clock.now += 2.5
    assert arrivals.recent() == 60 and arrivals.bursting()  # still inside the window
    clock.now += 0.5  # the second they arrived in is now 3 s old
    assert arrivals.recent() == 0 and not arrivals.bursting()


def test_arrivals_spread_over_seconds_are_summed_and_forgotten_second_by_second() -> None:
    clock = Clock()
    arrivals = Arrivals(rate=10, window_s=3, clock=clock)
    for step in range(3):
        for _ in range(10):
            arrivals.note()
        if step < 2:
            clock.now += 1
    assert arrivals.recent() == 30 and arrivals.bursting()
    clock.now += 1
    assert arrivals.recent() == 20 and not arrivals.bursting()
    arrivals.note()
    assert arrivals.recent() == 21
    clock.now += 10
    assert arrivals.recent() == 0
