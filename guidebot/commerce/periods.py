"""Statement periods: tenant-timezone months, and the open period a new entry lands in."""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from guidebot.errors import ValidationFailed

_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def parse(period: str) -> tuple[int, int]:
    found = _PERIOD.fullmatch(period or "")
    if not found:
        raise ValidationFailed(f"period: must be YYYY-MM, got {period!r}", code="period.format",
                               period=period)
    return int(found.group(1)), int(found.group(2))


def of(at: datetime, tz: ZoneInfo) -> str:
    local = at.astimezone(tz)
    return f"{local.year:04d}-{local.month:02d}"


def following(period: str) -> str:
    year, month = parse(period)
    return f"{year + month // 12:04d}-{month % 12 + 1:02d}"


def open_period(at: datetime, tz: ZoneInfo, settled: Collection[str]) -> str:
    """The period of `at`, or the first later one not settled (a settled period is locked)."""
    period = of(at, tz)
    while period in settled:
        period = following(period)
    return period


def bounds(period: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of the month in UTC."""
    year, month = parse(period)
    start = datetime(year, month, 1, tzinfo=tz)
    nxt_year, nxt_month = parse(following(period))
    end = datetime(nxt_year, nxt_month, 1, tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)
