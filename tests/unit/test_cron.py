"""Content-drop cron expressions: crontab syntax, next firings from APScheduler's CronTrigger."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from guidebot.content.sop_cron import describe, next_fire, parse_cron

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(("expr", "after", "expected"), [
    # Mondays at 10:00 in Shanghai (UTC+8, no DST): from Thursday 2026-12-03.
    ("0 10 * * 1", "2026-12-03T00:00", "2026-12-07T02:00"),
    # Strictly after: a firing exactly at `after` is not returned again.
    ("30 9 1 * *", "2026-12-01T01:30", "2027-01-01T01:30"),
    # 0 and 7 are both Sunday, as in crontab.
    ("0 0 * * 0", "2026-12-03T00:00", "2026-12-05T16:00"),
    ("0 0 * * 7", "2026-12-03T00:00", "2026-12-05T16:00"),
    # Day of month and day of week both restricted: either matches (the 13th, or a Friday).
    ("0 12 13 * 5", "2026-12-03T00:00", "2026-12-04T04:00"),
    ("0 12 13 * 5", "2026-12-12T05:00", "2026-12-13T04:00"),
    # Steps, ranges and lists; a weekday range with a step (Mon, Wed, Fri).
    ("*/20 8-9 * * *", "2026-12-03T01:50", "2026-12-04T00:00"),
    ("0 8 * * 1-5/2", "2026-12-03T00:00", "2026-12-04T00:00"),
    ("0 8 * * 1-5/2", "2026-12-04T00:00", "2026-12-07T00:00"),
    ("15 21 * 1,6 *", "2026-12-03T00:00", "2027-01-01T13:15"),
    # The local midnight of New Year in Shanghai is the previous day in UTC.
    ("0 0 1 1 *", "2026-12-31T15:59", "2026-12-31T16:00"),
])
def test_next_fire_in_shanghai(expr: str, after: str, expected: str) -> None:
    assert next_fire(parse_cron(expr), _utc(after), SHANGHAI) == _utc(expected)


def test_shanghai_has_no_dst_across_the_year() -> None:
    cron = parse_cron("0 9 * * *")
    for day in ("2027-01-15", "2027-03-14", "2027-07-01", "2027-11-07"):
        assert next_fire(cron, _utc(f"{day}T00:00"), SHANGHAI) == _utc(f"{day}T01:00")


def test_a_zone_with_dst_keeps_local_wall_time() -> None:
    cron = parse_cron("0 9 * * *")
    # New York: 09:00 EST is 14:00 UTC; after the 2027-03-14 switch 09:00 EDT is 13:00 UTC.
    assert next_fire(cron, _utc("2027-03-13T12:00"), NEW_YORK) == _utc("2027-03-13T14:00")
    assert next_fire(cron, _utc("2027-03-13T15:00"), NEW_YORK) == _utc("2027-03-14T13:00")
    # And back on 2027-11-07.
    assert next_fire(cron, _utc("2027-11-06T14:00"), NEW_YORK) == _utc("2027-11-07T14:00")


def test_never_firing_within_five_years_is_none() -> None:
    assert next_fire(parse_cron("0 0 30 2 *"), _utc("2026-12-03T00:00"), SHANGHAI) is None


@pytest.mark.parametrize(("expr", "message"), [
    ("0 25 * * *", "hour '25' is not valid (0-23)"),
    ("60 * * * *", "minute '60' is not valid (0-59)"),
    ("0 0 0 * *", "day of month '0' is not valid (1-31)"),
    ("0 0 * 13 *", "month '13' is not valid (1-12)"),
    ("0 0 * * 8", "day of week '8' is not valid (0-7)"),
    ("*/0 * * * *", "minute '*/0' is not valid (0-59)"),
    ("0 10-5 * * *", "hour '10-5' is not valid (0-23)"),
    ("0 10 * * mon", "day of week 'mon' is not valid (0-7)"),
    ("0 10 L * *", "day of month 'L' is not valid (1-31)"),
    ("0 10 * *", "expected 5 fields"),
])
def test_invalid_expressions_name_the_field(expr: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_cron(expr)


def test_common_shapes_are_described_for_pages_to_phrase() -> None:
    assert describe(parse_cron("0 10 * * 5")) == {"every": "week", "time": "10:00",
                                                  "days": [5]}
    assert describe(parse_cron("30 9 * * *")) == {"every": "day", "time": "09:30"}
    assert describe(parse_cron("0 20 * * 1-3,7")) == {"every": "week", "time": "20:00",
                                                      "days": [0, 1, 2, 3]}  # 7 is Sunday
    assert describe(parse_cron("5 8 1,15 * *")) == {"every": "month", "time": "08:05",
                                                    "days": [1, 15]}
    for odd in ("*/5 * * * *", "0 10 * 12 *", "0 10 1 * 5", "0 10 * * */2", "0 9-18 * * *"):
        assert describe(parse_cron(odd)) is None, odd  # shown as written
