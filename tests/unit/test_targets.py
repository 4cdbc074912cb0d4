"""Monthly targets' pure parts: which ranges are a month, completion and its words."""

from __future__ import annotations

from datetime import date

import pytest

from guidebot.stats.targets import TargetRefused, completion, month_of, month_span, progress

TODAY = date(2026, 12, 6)


def test_a_range_is_a_month_when_it_is_one_whole_month_or_this_month_so_far() -> None:
    assert month_of(date(2026, 11, 1), date(2026, 11, 30), TODAY) == "2026-11"  # 上月
    assert month_of(date(2026, 12, 1), TODAY, TODAY) == "2026-12"  # 本月 so far
    assert month_of(date(2024, 2, 1), date(2024, 2, 29), TODAY) == "2024-02"
    assert month_of(date(2026, 12, 1), date(2026, 12, 5), TODAY) is None
    assert month_of(date(2026, 11, 2), date(2026, 11, 30), TODAY) is None
    assert month_of(date(2026, 10, 1), date(2026, 11, 30), TODAY) is None
    assert month_of(date(2026, 11, 1), date(2026, 11, 29), TODAY) is None


def test_completion_and_its_words() -> None:
    assert completion(23, 30) == 0.7667 and completion(5, None) is None
    assert completion(5, 0) is None and completion(0, 10) == 0.0
    assert progress(23, 30) == "23 / 30 · 77%" and progress(1, 200) == "1 / 200 · 1%"
    assert progress(45050, 90000, money=True) == "¥450.50 / ¥900.00 · 50%"
    assert progress(3, None) == "" and progress(3, 0) == "3 / 0"
    assert month_span("2026-02") == (date(2026, 2, 1), date(2026, 2, 28))
    for bad in ("2026-13", "2026-1", "26-01", "2026-01-01"):
        with pytest.raises(TargetRefused) as refused:
            month_span(bad)
        assert refused.value.field == "period"
