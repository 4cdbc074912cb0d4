"""Pure binding rules: protection, validity, transfers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from guidebot.contacts.binding import Decision, Period, current, on_add, valid_at

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_first_add_binds() -> None:
    assert on_add(None, "a", T0, protection_days=30) is Decision.BIND


def test_same_guide_keeps() -> None:
    assert on_add(Period("a", T0), "a", T0 + timedelta(days=90), 30) is Decision.KEEP


def test_protection_edges() -> None:
    bound = Period("a", T0)
    assert on_add(bound, "b", T0 + timedelta(days=30) - timedelta(seconds=1), 30) is Decision.KEEP
    assert on_add(bound, "b", T0 + timedelta(days=30), 30) is Decision.TAKE_OVER


def test_zero_protection_means_latest_adder_wins() -> None:
    assert on_add(Period("a", T0), "b", T0, 0) is Decision.TAKE_OVER


def test_pending_transfer_is_taken_over_at_once() -> None:
    pending = Period("a", T0, None, "transfer_pending")
    assert on_add(pending, "b", T0 + timedelta(hours=1), 30) is Decision.TAKE_OVER


def test_validity_ends_binding_after_n_days() -> None:
    bound = Period("a", T0)
    assert valid_at(bound, T0 + timedelta(days=7) - timedelta(seconds=1), 7)
    assert not valid_at(bound, T0 + timedelta(days=7), 7)
    assert valid_at(bound, T0 + timedelta(days=7000), 0)


def test_ended_binding_is_not_current() -> None:
    ended = Period("a", T0, T0 + timedelta(days=1), "customer_deleted")
    assert current([ended], T0 + timedelta(hours=1), 0) == ended
    assert current([ended], T0 + timedelta(days=1), 0) is None


@given(st.integers(min_value=0, max_value=400), st.integers(min_value=0, max_value=400),
       st.integers(min_value=0, max_value=400))
def test_takeover_iff_protection_elapsed(protection: int, days_later: int, seconds: int) -> None:
    at = T0 + timedelta(days=days_later, seconds=seconds)
    decision = on_add(Period("a", T0), "b", at, protection)
    elapsed = at - T0 >= timedelta(days=protection)
    assert (decision is Decision.TAKE_OVER) == elapsed


def test_valid_from_the_instant_it_starts_for_exactly_its_validity() -> None:
    at = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
    starts_now = Period("g", at)
    assert valid_at(starts_now, at, 0) and valid_at(starts_now, at, 1)
    assert not valid_at(Period("g", at + timedelta(seconds=1)), at, 0)  # not started yet
    one_day = Period("g", at - timedelta(hours=12))
    assert valid_at(one_day, at, 1)  # half-way through a 1-day validity
    assert not valid_at(Period("g", at - timedelta(days=1)), at, 1)  # exactly one day: over


def test_current_is_the_latest_started_valid_binding_in_any_order() -> None:
    at = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
    older = Period("older", at - timedelta(days=9))
    newer = Period("newer", at - timedelta(days=2))
    assert current([older, newer], at, 0) == newer
    assert current([newer, older], at, 0) == newer
    assert current([], at, 0) is None
