"""The console's statistics job waits out a burst: while callbacks or order events arrive at
burst rates its scheduled run counts nothing (its transactions would hold SQLite's writer
while acknowledgements queue), then counts everything once the burst is over, and it never
waits longer than MAX_DEFER_S. The webhooks note what arrives."""

from __future__ import annotations

from sqlalchemy import func, select

from guidebot.bursts import Arrivals
from guidebot.db.models_stats import StatsDaily
from guidebot.stats import service as stats_service
from guidebot.stats.service import StatsService
from tests.support.commerce import paid, post_order
from tests.support.stack import Stack


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


async def _cells(stack: Stack) -> int:
    async with stack.runtime.services.db.read() as s:
        return int((await s.execute(select(func.count()).select_from(StatsDaily))).scalar_one())


async def test_the_webhooks_note_arrivals(stack: Stack) -> None:
    arrivals = stack.runtime.services.stats.arrivals = Arrivals(clock=Clock())  # time stands
    before = arrivals.recent()
    for _ in range(3):
        await stack.sandbox.simulate_add_contact("acme", userid="lina")
    assert arrivals.recent() - before == 3  # three add callbacks
    status, body = await post_order(stack, paid("BURST-1"))
    assert status == 202, body
    assert arrivals.recent() - before == 4  # and one order event


async def test_a_burst_defers_the_scheduled_upkeep_until_it_is_over(stack: Stack) -> None:
    for _ in range(2):
        await stack.sandbox.simulate_add_contact("acme", userid="lina")
    await stack.runtime.drain()
    clock = Clock()
    stats = StatsService(stack.settings, stack.runtime.services.db, clock=clock)
    for _ in range(100):
        stats.arrivals.note()
    assert await stats.scheduled_upkeep() is None and await _cells(stack) == 0  # waited
    clock.now += 3  # the window has passed: no burst
    assert await stats.scheduled_upkeep() == 2 and await _cells(stack) == 1
    assert await stats.scheduled_upkeep() == 0


async def test_a_burst_that_never_ends_still_gets_its_statistics(stack: Stack) -> None:
    await stack.sandbox.simulate_add_contact("acme", userid="lina")
    await stack.runtime.drain()
    clock = Clock()
    stats = StatsService(stack.settings, stack.runtime.services.db, clock=clock)
    waited = 0
    while True:
        for _ in range(100):
            stats.arrivals.note()
        counted = await stats.scheduled_upkeep()
        if counted is not None:
            break
        waited += 1
        clock.now += 30  # the job's interval
    assert counted == 1 and waited == int(stats_service.MAX_DEFER_S // 30)
