"""Customer layers and value tiers from the layer counts the upkeep keeps (by add day and
last-purchase day): customers spread over months, checked against the definitions by hand
for two ranges, counted as they come and by the backfill alike."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from guidebot.db.models import FollowEvent
from guidebot.db.models_commerce import Order
from tests.support.console import upkeep
from tests.support.stack import Stack

D = date(2026, 10, 31)  # the end of the first range


def _at(stack: Stack, days_before_d: int, hour: int = 12, minute: int = 0) -> datetime:
    day = D - timedelta(days=days_before_d)
    return datetime.combine(day, time(hour, minute), tzinfo=stack.tenant().tz)


async def _add(stack: Stack, customer: str, days: int, action: str = "added") -> None:
    async with stack.runtime.services.db.write() as s:
        s.add(FollowEvent(tenant="acme", guide="lina", external_userid=customer,
                          action=action, at=_at(stack, days)))


async def _order(stack: Stack, order_no: str, customer: str, paid: datetime,
                 fen: int, received: datetime | None = None) -> None:
    async with stack.runtime.services.db.write() as s:
        s.add(Order(tenant="acme", order_no=order_no, external_userid=customer, paid_at=paid,
                    amount_fen=fen, rule="none", rule_version_id=0, evidence="{}",
                    lines="[]", received_at=received or datetime.now(UTC)))


async def test_layers_and_tiers_over_months_as_they_come_and_by_backfill(
        stack: Stack) -> None:
    stats = stack.runtime.services.stats
    for customer, days in (("c1", 5), ("c2", 100), ("c3", 100), ("c4", 60), ("c5", 10),
                           ("c6", -3), ("c7", 40), ("c8", 100)):
        await _add(stack, customer, days)
    await upkeep(stack)
    await _order(stack, "L-2", "c2", _at(stack, 10), 30_000)  # active, mid
    await _order(stack, "L-3", "c3", _at(stack, 120), 500)  # bought long ago: dormant, low
    await _order(stack, "L-4", "c4", _at(stack, 3), 150_000)  # high, then deleted: lost
    await _order(stack, "L-5", "c5", _at(stack, 2), 100)  # new (added 10 days before)
    await _order(stack, "L-7", "c7", _at(stack, -5), 5_000)  # bought after the range's end
    await _order(stack, "L-8", "c8", _at(stack, 89, hour=0, minute=30), 20_000)  # edge day
    await _order(stack, "L-9", "c9", _at(stack, 1), 9_000)  # never added: not known
    await upkeep(stack)
    await _add(stack, "c4", 50, action="deleted_by_customer")
    await upkeep(stack)

    first = await stats.overview("acme", D - timedelta(days=29), D)
    assert first["layers"] == {"new": 2, "active": 3, "dormant": 1, "lost": 1}
    assert first["value_tiers"] == {"high": 1, "mid": 2, "low": 3, "none": 1}
    assert first["totals"]["base"] == 5  # c2, c3, c4, c7, c8
    d2 = D - timedelta(days=50)  # c1, c5, c6, c7 not known yet; c4 is new but no longer follows
    second = await stats.overview("acme", d2 - timedelta(days=29), d2)
    assert second["layers"] == {"new": 0, "active": 3, "dormant": 0, "lost": 1}
    assert second["value_tiers"] == {"high": 1, "mid": 2, "low": 1, "none": 0}
    assert second["totals"]["base"] == 3  # c2, c3, c8

    await stats.backfill("acme")
    assert await stats.overview("acme", D - timedelta(days=29), D) == first
    assert await stats.overview("acme", d2 - timedelta(days=29), d2) == second


async def test_an_order_that_commits_after_a_later_one_is_counted_once(stack: Stack) -> None:
    """Orders are read past an (arrival, order_no) watermark; one that arrived earlier but
    committed after the watermark moved on is found by the look-back, and counted once."""
    stats = stack.runtime.services.stats
    now = datetime.now(UTC)
    await _add(stack, "c1", 5)
    await _order(stack, "LATE-2", "c1", _at(stack, 3), 1_000, received=now)
    assert await upkeep(stack) == 2
    await _order(stack, "LATE-1", "c1", _at(stack, 4), 500,
                 received=now - timedelta(minutes=5))  # arrived first, committed last
    assert await upkeep(stack) == 1
    assert await upkeep(stack) == 0
    body = await stats.overview("acme", D - timedelta(days=29), D)
    totals = body["totals"]
    assert (totals["orders_all"], totals["gmv_all_fen"]) == (2, 1_500)
    assert (totals["first_purchases"], totals["repurchases"]) == (1, 1)
    await stats.backfill("acme")
    assert await stats.overview("acme", D - timedelta(days=29), D) == body
