"""Five-field cron expressions (minute hour day-of-month month day-of-week) for content drops."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_NAMES = ("minute", "hour", "day of month", "month", "day of week")
SEARCH_DAYS = 366 * 5


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday, as in crontab
    any_day: bool
    any_weekday: bool

    def day_matches(self, day: datetime) -> bool:
        dom, dow = day.day in self.days, (day.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:  # crontab: both restricted → either matches
            return dom and dow
        return dom or dow


def _field(text: str, index: int) -> frozenset[int]:
    low, high = _RANGES[index]
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() else (1 if not step_text else 0)
        if body == "*":
            start, end = low, high
        elif "-" in body:
            a, _, b = body.partition("-")
            start, end = (int(a), int(b)) if a.isdigit() and b.isdigit() else (-1, -1)
        elif body.isdigit():
            start = end = int(body)
            if step_text:
                end = high
        else:
            start = end = -1
        if step < 1 or start < low or end > high or start > end:
            raise ValueError(f"{_NAMES[index]} {part!r} is not valid ({low}-{high})")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def parse_cron(text: str) -> Cron:
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(f"{text!r}: expected 5 fields: minute hour day month weekday")
    parsed = [_field(f, i) for i, f in enumerate(fields)]
    parsed[4] = frozenset(v % 7 for v in parsed[4])  # 7 is Sunday too
    minutes, hours, days, months, weekdays = parsed
    return Cron(minutes, hours, days, months, weekdays, any_day=fields[2] == "*",
                any_weekday=fields[4] == "*")


def next_fire(cron: Cron, after: datetime, tz: ZoneInfo) -> datetime | None:
    """The first firing strictly after `after` (UTC result), or None within five years."""
    local = after.astimezone(tz)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    for _ in range(SEARCH_DAYS):
        if day.month in cron.months and cron.day_matches(day):
            for hour in sorted(cron.hours):
                for minute in sorted(cron.minutes):
                    at = datetime.combine(day.date(), time(hour, minute), tzinfo=tz)
                    if at.astimezone(UTC) > after:
                        return at.astimezone(UTC)
        day = (day + timedelta(days=1)).replace(tzinfo=tz)
    return None
