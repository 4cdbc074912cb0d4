"""The SOP planner, property-tested: never before the trigger, never in quiet hours, the
per-customer quota never exceeded in any natural period."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guidebot.content import sop_planner as planner
from guidebot.content.sop_planner import Offset, QuietHours, Quota, StepRule

SHANGHAI = ZoneInfo("Asia/Shanghai")
ZONES = [SHANGHAI, ZoneInfo("America/New_York"), ZoneInfo("Europe/London"),
         ZoneInfo("Australia/Lord_Howe"), ZoneInfo("UTC")]
DEFAULT_QUIET = QuietHours(time(21), time(9))

moments = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31),
                       timezones=st.just(UTC))
clock = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 59]))
quiet_hours = st.builds(QuietHours, clock, clock)
offsets = st.one_of(
    st.builds(lambda n, u: Offset(delta=timedelta(**{u: n})), st.integers(0, 400),
              st.sampled_from(["minutes", "hours", "days"])),
    st.builds(lambda d, at: Offset(day=d, at=at), st.integers(0, 40), clock))
channels = st.sampled_from(["guide_task", "guide_task", "reminder", "moment"])
steps = st.lists(st.builds(StepRule, offsets, channels), min_size=1, max_size=8)
quotas = st.builds(Quota, st.integers(1, 4), st.sampled_from(["day", "week", "month"]))


def _placed(result: list[planner.Placement]) -> list[datetime]:
    return [p.at for p in result if p.at is not None]


@settings(max_examples=300, deadline=None)
@given(trigger=moments, rules=steps, quiet=quiet_hours, quota=quotas,
       tz=st.sampled_from(ZONES), on_quota=st.sampled_from(["defer", "skip"]),
       taken=st.lists(st.integers(-40 * 24, 40 * 24), max_size=6))
def test_every_time_is_after_the_trigger_outside_quiet_hours_within_quota(
        trigger: datetime, rules: list[StepRule], quiet: QuietHours, quota: Quota,
        tz: ZoneInfo, on_quota: str, taken: list[int]) -> None:
    earlier = [trigger + timedelta(hours=h) for h in taken]
    result = planner.plan(trigger, rules, quiet=quiet, quota=quota, tz=tz, taken=earlier,
                          on_quota=on_quota)
    assert len(result) == len(rules)
    times = _placed(result)
    assert all(t >= trigger for t in times)
    assert times == sorted(times)  # a step never lands before the one before it
    assert not any(quiet.contains(t.astimezone(tz).time()) for t in times)
    counted = [p.at for p, r in zip(result, rules, strict=True)
               if p.at is not None and r.channel == "guide_task"]
    before = Counter(planner.period_key(t, quota.period, tz) for t in earlier)
    after = before + Counter(planner.period_key(t, quota.period, tz) for t in counted)
    for key, total in after.items():
        # a period already over its quota before this plan gains nothing from it
        assert total <= max(quota.count, before[key])
        if total > quota.count:
            assert after[key] == before[key]


@settings(max_examples=200, deadline=None)
@given(trigger=moments, rules=steps)
def test_skipped_or_moved_steps_say_why(trigger: datetime, rules: list[StepRule]) -> None:
    result = planner.plan(trigger, rules, quiet=DEFAULT_QUIET, quota=Quota(1, "day"),
                          tz=SHANGHAI, on_quota="skip")
    for placement in result:
        if placement.at is None:
            assert placement.reason.startswith("skipped")


def test_day_n_at_counts_from_the_trigger_day_in_the_tenant_zone() -> None:
    # 2026-11-20 23:30 in Shanghai is 15:30 UTC: "day 1 at 10:00" is 2026-11-21 10:00 +08:00.
    trigger = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
    at = planner.nominal(trigger, planner.parse_offset("day 1 at 10:00"), SHANGHAI)
    assert at.astimezone(SHANGHAI).isoformat() == "2026-11-21T10:00:00+08:00"
    assert planner.nominal(trigger, planner.parse_offset("+30m"), SHANGHAI) == \
        trigger + timedelta(minutes=30)
    # day 0 at a time already past: due at once (never before the trigger)
    assert planner.nominal(trigger, planner.parse_offset("day 0 at 10:00"), SHANGHAI) == trigger


def test_quiet_hours_move_to_the_next_allowed_time() -> None:
    late = datetime(2026, 11, 20, 22, 15, tzinfo=SHANGHAI)
    early = datetime(2026, 11, 21, 7, 0, tzinfo=SHANGHAI)
    nine = datetime(2026, 11, 21, 9, 0, tzinfo=SHANGHAI)
    assert planner.leave_quiet(late, DEFAULT_QUIET, SHANGHAI) == nine
    assert planner.leave_quiet(early, DEFAULT_QUIET, SHANGHAI) == nine
    noon = datetime(2026, 11, 21, 12, 0, tzinfo=SHANGHAI)
    assert planner.leave_quiet(noon, DEFAULT_QUIET, SHANGHAI) == noon


def test_quota_defers_to_the_next_day_or_skips_with_the_reason() -> None:
    at = datetime(2026, 11, 21, 10, 0, tzinfo=SHANGHAI)
    taken = Counter({planner.period_key(at, "day", SHANGHAI): 1})
    deferred = planner.place(at, channel="guide_task", quiet=DEFAULT_QUIET,
                             quota=Quota(1, "day"), taken=taken, tz=SHANGHAI)
    assert deferred.at == datetime(2026, 11, 22, 9, 0, tzinfo=SHANGHAI)
    assert deferred.reason == "deferred: quota 1/day used"
    skipped = planner.place(at, channel="guide_task", quiet=DEFAULT_QUIET,
                            quota=Quota(1, "day"), taken=taken, tz=SHANGHAI, on_quota="skip")
    assert skipped.at is None and skipped.reason == "skipped: quota 1/day used"
    reminder = planner.place(at, channel="reminder", quiet=DEFAULT_QUIET,
                             quota=Quota(1, "day"), taken=taken, tz=SHANGHAI)
    assert reminder.at == at  # reminders go to the guide: no customer quota


def test_month_quota_defers_to_the_first_of_next_month() -> None:
    at = datetime(2026, 11, 30, 20, 0, tzinfo=SHANGHAI)
    taken = Counter({planner.period_key(at, "month", SHANGHAI): 4})
    placed = planner.place(at, channel="guide_task", quiet=DEFAULT_QUIET,
                           quota=Quota(4, "month"), taken=taken, tz=SHANGHAI)
    assert placed.at == datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI)


@pytest.mark.parametrize("text", ["+30", "30m", "+1w", "day x at 10:00", "day 1 at 25:00",
                                  "day 1 at 10:60", ""])
def test_bad_offsets_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        planner.parse_offset(text)


def test_welcome_is_never_moved() -> None:
    at = datetime(2026, 11, 20, 23, 0, tzinfo=SHANGHAI)
    placed = planner.place(at, channel="welcome", quiet=DEFAULT_QUIET, quota=Quota(1, "day"),
                           taken=Counter(), tz=SHANGHAI)
    assert placed.at == at


@settings(max_examples=300, deadline=None)
@given(t=moments, period=st.sampled_from(["day", "week", "month"]), tz=st.sampled_from(ZONES))
def test_a_natural_period_runs_from_its_start_to_the_next_ones(
        t: datetime, period: str, tz: ZoneInfo) -> None:
    start = planner.period_start(t, period, tz)
    end = planner.next_period_start(t, period, tz)
    assert start <= t < end
    key = planner.period_key(t, period, tz)
    assert planner.period_key(start, period, tz) == key
    assert planner.period_key(start - timedelta(minutes=1), period, tz) != key
    assert planner.period_key(end, period, tz) != key
