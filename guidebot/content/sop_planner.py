"""Pure SOP scheduling: step times in the tenant's time zone, quiet hours and quotas."""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_RELATIVE = re.compile(r"^\+(\d{1,5})(m|h|d)$")
_DAY_AT = re.compile(r"^day (\d{1,3}) at (\d{1,2}):(\d{2})$")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")
_QUOTA = re.compile(r"^(\d{1,4})/(day|week|month)$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
MAX_DEFERRALS = 400  # periods a quota-blocked step may be pushed before it is given up
NO_QUIET_CHANNELS = frozenset({"welcome"})  # the welcome must leave within WeCom's 20 s
QUOTA_CHANNELS = frozenset({"guide_task"})  # 群发 to customers counts against their quota


@dataclass(frozen=True)
class Offset:
    """ "+30m" / "+2d" (a delta from the trigger) or "day 3 at 10:00" (day 0 = trigger day)."""

    delta: timedelta | None = None
    day: int = 0
    at: time | None = None


@dataclass(frozen=True)
class QuietHours:
    """Local times in [start, end) when nothing is sent; start == end means none."""

    start: time
    end: time

    def contains(self, local: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


@dataclass(frozen=True)
class Quota:
    """At most `count` counted sends per natural day / week / month in the tenant's zone."""

    count: int
    period: str


@dataclass(frozen=True)
class StepRule:
    offset: Offset
    channel: str


@dataclass(frozen=True)
class Placement:
    """Where a step lands; `at` None when it is skipped. `reason` records any move or skip."""

    at: datetime | None
    reason: str = ""


def _clock(hours: str, minutes: str) -> time:
    h, m = int(hours), int(minutes)
    if h > 23 or m > 59:
        raise ValueError(f"{hours}:{minutes} is not a time of day")
    return time(h, m)


@functools.lru_cache(maxsize=1024)
def parse_offset(text: str) -> Offset:
    """Parse a step's `at`; ValueError names what is wrong."""
    found = _RELATIVE.fullmatch(text.strip())
    if found:
        return Offset(delta=timedelta(**{_UNITS[found.group(2)]: int(found.group(1))}))
    found = _DAY_AT.fullmatch(text.strip())
    if found:
        return Offset(day=int(found.group(1)), at=_clock(found.group(2), found.group(3)))
    raise ValueError(f'{text!r}: expected "+30m", "+6h", "+2d" or "day 3 at 10:00"')


@functools.lru_cache(maxsize=1024)
def parse_quiet(text: str) -> QuietHours:
    start, sep, end = text.partition("-")
    first, second = _CLOCK.fullmatch(start.strip()), _CLOCK.fullmatch(end.strip())
    if not sep or first is None or second is None:
        raise ValueError(f'{text!r}: expected "21:00-09:00"')
    return QuietHours(_clock(*first.groups()), _clock(*second.groups()))


@functools.lru_cache(maxsize=1024)
def parse_quota(text: str) -> Quota:
    found = _QUOTA.fullmatch(text.strip())
    if found is None or int(found.group(1)) < 1:
        raise ValueError(f'{text!r}: expected "1/day", "7/week" or "4/month"')
    return Quota(int(found.group(1)), found.group(2))


def nominal(trigger: datetime, offset: Offset, tz: ZoneInfo) -> datetime:
    """The step's time before quiet hours and quotas; never before the trigger."""
    if offset.delta is not None:
        return trigger + offset.delta
    assert offset.at is not None
    day = trigger.astimezone(tz).date() + timedelta(days=offset.day)
    return max(trigger, _local(day, offset.at, tz))


def _local(day: date, at: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def leave_quiet(t: datetime, quiet: QuietHours, tz: ZoneInfo) -> datetime:
    """`t`, or the first moment after it outside quiet hours."""
    local = t.astimezone(tz)
    if not quiet.contains(local.time()):
        return t
    day = local.date()
    if quiet.start > quiet.end and local.time() >= quiet.start:
        day += timedelta(days=1)
    candidate = _local(day, quiet.end, tz)
    # A DST jump can put the wall-clock end somewhere odd: walk to the first allowed minute.
    while candidate < t or quiet.contains(candidate.astimezone(tz).time()):
        candidate += timedelta(minutes=1)
    return candidate


def period_key(t: datetime, period: str, tz: ZoneInfo) -> tuple[int, int, int]:
    """The natural period containing `t`: (year, month, day) / ISO (year, week, 0) / (y, m, 0)."""
    local = t.astimezone(tz).date()
    if period == "day":
        return (local.year, local.month, local.day)
    if period == "week":
        iso = local.isocalendar()
        return (iso.year, iso.week, 0)
    return (local.year, local.month, 0)


def period_start(t: datetime, period: str, tz: ZoneInfo) -> datetime:
    """The first moment of the natural period containing `t` (the counterpart of
    next_period_start: [period_start, next_period_start) is the period)."""
    local = t.astimezone(tz).date()
    if period == "week":
        local -= timedelta(days=local.weekday())
    elif period == "month":
        local = local.replace(day=1)
    start = _local(local, time(0, 0), tz)
    key = period_key(t, period, tz)
    while period_key(start, period, tz) != key:  # midnight lost to a DST jump
        start += timedelta(minutes=15)
    return start


def next_period_start(t: datetime, period: str, tz: ZoneInfo) -> datetime:
    local = t.astimezone(tz).date()
    if period == "day":
        first = local + timedelta(days=1)
    elif period == "week":
        first = local + timedelta(days=7 - local.weekday())
    else:
        first = (local.replace(day=28) + timedelta(days=4)).replace(day=1)
    start = _local(first, time(0, 0), tz)
    key = period_key(t, period, tz)
    while start <= t or period_key(start, period, tz) == key:  # midnight lost to a DST jump
        start += timedelta(minutes=15)
    return start


def place(candidate: datetime, *, channel: str, quiet: QuietHours, quota: Quota | None,
          taken: Counter[tuple[int, int, int]], tz: ZoneInfo, on_quota: str = "defer"
          ) -> Placement:
    """Move `candidate` out of quiet hours, then defer (or skip) it while its period's quota
    is used up. `taken` counts the customer's counted sends per period key."""
    if channel in NO_QUIET_CHANNELS:
        return Placement(candidate)
    at = leave_quiet(candidate, quiet, tz)
    reason = "moved out of quiet hours" if at != candidate else ""
    if quota is None or channel not in QUOTA_CHANNELS:
        return Placement(at, reason)
    for _ in range(MAX_DEFERRALS):
        if taken[period_key(at, quota.period, tz)] < quota.count:
            return Placement(at, reason)
        if on_quota == "skip":
            return Placement(None, f"skipped: quota {quota.count}/{quota.period} used")
        at = leave_quiet(next_period_start(at, quota.period, tz), quiet, tz)
        reason = f"deferred: quota {quota.count}/{quota.period} used"
    return Placement(None, "skipped: no free quota slot")


def count_taken(times: Iterable[datetime], quota: Quota | None,
                tz: ZoneInfo) -> Counter[tuple[int, int, int]]:
    if quota is None:
        return Counter()
    return Counter(period_key(t, quota.period, tz) for t in times)


def plan(trigger: datetime, steps: Sequence[StepRule], *, quiet: QuietHours,
         quota: Quota | None, tz: ZoneInfo, taken: Iterable[datetime] = (),
         on_quota: str = "defer", after: datetime | None = None) -> list[Placement]:
    """Every step's placement; each step lands no earlier than the one before it."""
    counted = count_taken(taken, quota, tz)
    floor = max(trigger, after) if after else trigger
    out = []
    for step in steps:
        placed = place(max(nominal(trigger, step.offset, tz), floor), channel=step.channel,
                       quiet=quiet, quota=quota, taken=counted, tz=tz, on_quota=on_quota)
        out.append(placed)
        if placed.at is not None:
            floor = placed.at
            if quota is not None and step.channel in QUOTA_CHANNELS:
                counted[period_key(placed.at, quota.period, tz)] += 1
    return out
