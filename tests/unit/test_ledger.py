"""Clawback allocation and statement periods (pure): caps, rounding, locked periods."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guidebot.commerce import periods
from guidebot.commerce.attribution import Line
from guidebot.commerce.clawback import LineState, allocate, states_after
from guidebot.commerce.rules import half_up
from guidebot.errors import ValidationFailed

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _line(sku: str, amount: int, rate: str = "0.03") -> Line:
    return Line(sku, "", 1, amount, rate, half_up(amount, rate))


def test_partial_refunds_claw_back_half_up_and_never_more_than_earned() -> None:
    lines = [_line("A", 100)]  # 3 fen earned
    first, _ = allocate(lines, [LineState()], [("A", 50)])  # 1.5 → 2
    assert [a.clawback_fen for a in first] == [2]
    second, _ = allocate(lines, states_after(1, [first]), [("A", 50)])  # 2, capped at 1
    assert [a.clawback_fen for a in second] == [1]
    third, unmatched = allocate(lines, states_after(1, [first, second]), [("A", 10)])
    assert third == [] and unmatched == 10


def test_refund_spreads_over_lines_of_the_sku_and_reports_the_unmatched() -> None:
    lines = [_line("A", 1000), _line("B", 500, "0.05"), _line("A", 300)]
    allocations, unmatched = allocate(lines, [LineState()] * 3,
                                      [("A", 1200), ("B", 600), ("Z", 7)])
    assert [(a.line, a.amount_fen, a.clawback_fen) for a in allocations] == [
        (0, 1000, 30), (2, 200, 6), (1, 500, 25)]
    assert unmatched == 100 + 7


@given(amounts=st.lists(st.integers(0, 10**7), min_size=1, max_size=4),
       rate=st.sampled_from(["0", "0.01", "0.03", "0.05", "0.08", "0.123456", "1"]),
       refunds=st.lists(st.tuples(st.integers(0, 3), st.integers(1, 10**7)), max_size=8))
def test_clawback_never_exceeds_commission_and_matches_the_formula(
        amounts: list[int], rate: str, refunds: list[tuple[int, int]]) -> None:
    lines = [_line(f"S{i}", a, rate) for i, a in enumerate(amounts)]
    done: list[list] = []  # type: ignore[type-arg]
    refunded_per_line = [0] * len(lines)
    formula = [0] * len(lines)
    for index, amount in refunds:
        allocations, _ = allocate(lines, states_after(len(lines), done), [(f"S{index}", amount)])
        done.append(allocations)
        if index < len(lines):
            take = min(amount, lines[index].amount_fen - refunded_per_line[index])
            refunded_per_line[index] += take
            formula[index] += half_up(take, rate) if take > 0 else 0
    final = states_after(len(lines), done)
    for line, state, expected in zip(lines, final, formula, strict=True):
        assert state.refunded_fen <= line.amount_fen
        assert state.clawed_fen == min(line.commission_fen, expected)
        assert line.commission_fen - state.clawed_fen >= 0


@pytest.mark.parametrize(("at", "period"), [
    (datetime(2026, 11, 30, 15, 59, 59, tzinfo=UTC), "2026-11"),  # 23:59:59 in Shanghai
    (datetime(2026, 11, 30, 16, 0, 0, tzinfo=UTC), "2026-12"),    # midnight Dec 1 Shanghai
    (datetime(2026, 12, 31, 16, 0, 0, tzinfo=UTC), "2027-01"),
])
def test_periods_are_tenant_timezone_months(at: datetime, period: str) -> None:
    assert periods.of(at, SHANGHAI) == period


def test_a_settled_period_sends_new_entries_to_the_next_open_one() -> None:
    at = datetime(2026, 11, 15, tzinfo=UTC)
    assert periods.open_period(at, SHANGHAI, set()) == "2026-11"
    assert periods.open_period(at, SHANGHAI, {"2026-11"}) == "2026-12"
    assert periods.open_period(at, SHANGHAI, {"2026-11", "2026-12"}) == "2027-01"
    assert periods.open_period(at, SHANGHAI, {"2026-10"}) == "2026-11"


def test_period_bounds_and_validation() -> None:
    start, end = periods.bounds("2026-12", SHANGHAI)
    assert start == datetime(2026, 11, 30, 16, tzinfo=UTC)
    assert end == datetime(2026, 12, 31, 16, tzinfo=UTC)
    for bad in ("2026-13", "2026-1", "26-11", "", "2026-11-01"):
        with pytest.raises(ValidationFailed):
            periods.parse(bad)
