"""Five-field cron expressions (minute hour day-of-month month day-of-week) for content drops.

The firing times come from APScheduler's CronTrigger, in the tenant's time zone. Two crontab
rules differ from APScheduler 3.x and are kept here: day-of-week numbers are crontab's
(0 and 7 = Sunday; APScheduler 3.x counts 0 = Monday), and when both day-of-month and
day-of-week are restricted a day matching either fires (APScheduler requires both), so that
case is two triggers whose earliest firing wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_NAMES = ("minute", "hour", "day of month", "month", "day of week")
_PART = re.compile(r"^(?:\*|(\d+)(?:-(\d+))?)(?:/(\d+))?$")
# APScheduler 3.x weekday names by crontab number (0 and 7 are Sunday).
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
SEARCH_YEARS = 5


@dataclass(frozen=True)
class Cron:
    """A validated expression: the five fields as written."""

    minute: str
    hour: str
    day: str
    month: str
    weekday: str

    @property
    def any_day(self) -> bool:
        return self.day == "*"

    @property
    def any_weekday(self) -> bool:
        return self.weekday == "*"


def _check(text: str, index: int) -> None:
    """The crontab syntax guidebot accepts: `*`, `N`, `A-B`, each with an optional `/STEP`,
    comma-separated, within the field's range."""
    low, high = _RANGES[index]
    for part in text.split(","):
        match = _PART.fullmatch(part)
        ok = match is not None
        if match is not None:
            first, last, step = (int(g) if g is not None else None for g in match.groups())
            bounds = [v for v in (first, last) if v is not None]
            ok = (all(low <= v <= high for v in bounds) and (step is None or step >= 1)
                  and (first is None or last is None or first <= last))
        if not ok:
            raise ValueError(f"{_NAMES[index]} {part!r} is not valid ({low}-{high})")


def _weekdays(text: str) -> str:
    """A crontab day-of-week field in APScheduler's names (0 = 7 = Sunday)."""
    if text == "*":
        return "*"
    names: list[str] = []
    for part in text.split(","):
        body, _, step = part.partition("/")
        if body == "*":
            first, last = 0, 7
        else:
            first_text, _, last_text = body.partition("-")
            first = int(first_text)
            last = int(last_text) if last_text else (7 if step else first)
        names.extend(_WEEKDAYS[d] for d in range(first, last + 1, int(step or 1)))
    return ",".join(dict.fromkeys(names))


_NUMBERS = re.compile(r"^\d+(?:-\d+)?(?:,\d+(?:-\d+)?)*$")  # lists and ranges, no steps


def _listed(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        out.extend(range(int(first), int(last or first) + 1))
    return out


def describe(cron: Cron) -> dict[str, object] | None:
    """The common shapes in words' terms, for pages to phrase: at one time of day, every day
    ("day"), on some weekdays ("week", crontab numbers with 0 = Sunday, 7 folded into 0) or
    on some days of the month ("month"); None for anything else (shown as written)."""
    if not (cron.minute.isdigit() and cron.hour.isdigit() and cron.month == "*"):
        return None
    time = f"{int(cron.hour):02d}:{int(cron.minute):02d}"
    if cron.any_day and cron.any_weekday:
        return {"every": "day", "time": time}
    if cron.any_day and _NUMBERS.fullmatch(cron.weekday):
        return {"every": "week", "time": time,
                "days": sorted({d % 7 for d in _listed(cron.weekday)})}
    if cron.any_weekday and _NUMBERS.fullmatch(cron.day):
        return {"every": "month", "time": time, "days": sorted(set(_listed(cron.day)))}
    return None


def parse_cron(text: str) -> Cron:
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(f"{text!r}: expected 5 fields: minute hour day month weekday")
    for index, field in enumerate(fields):
        _check(field, index)
    cron = Cron(*fields)
    try:
        _trigger(cron, "UTC")
    except ValueError as exc:  # what APScheduler refuses beyond the checks above
        raise ValueError(f"{text!r} is not valid: {exc}") from None
    return cron


@lru_cache(maxsize=256)
def _trigger(cron: Cron, timezone: str) -> BaseTrigger:
    def one(day: str, weekday: str) -> CronTrigger:
        return CronTrigger(minute=cron.minute, hour=cron.hour, day=day, month=cron.month,
                           day_of_week=_weekdays(weekday), timezone=timezone)

    if cron.any_day or cron.any_weekday:
        return one(cron.day, cron.weekday)
    # crontab: both restricted → a day matching either one fires.
    return OrTrigger([one(cron.day, "*"), one("*", cron.weekday)])


def next_fire(cron: Cron, after: datetime, tz: ZoneInfo) -> datetime | None:
    """The first firing strictly after `after` (UTC result), or None within five years."""
    trigger = _trigger(cron, tz.key)
    at = trigger.get_next_fire_time(after, after + timedelta(microseconds=1))
    if at is None or at > after + timedelta(days=366 * SEARCH_YEARS):
        return None
    return at.astimezone(UTC)  # type: ignore[no-any-return]
