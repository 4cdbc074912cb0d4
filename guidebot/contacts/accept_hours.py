"""自动通过好友's window of the day ("HH:MM-HH:MM", the tenant's time; the end may come first,
past midnight): checked when HQ sets it, and asked whether a time of day is in it."""

from __future__ import annotations

import re
from datetime import time

from guidebot.errors import ValidationFailed

_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


def parse_hours(hours: str) -> tuple[time, time] | None:
    """"HH:MM-HH:MM" as (start, end); "" as None (all day). ValidationFailed otherwise."""
    if not hours:
        return None
    found = _HOURS.fullmatch(hours)
    if found is None:
        raise ValidationFailed("auto_accept_hours: must be HH:MM-HH:MM of the tenant's day "
                               "(e.g. 09:00-21:00), or empty for all day",
                               code="channel_hours")
    h1, m1, h2, m2 = (int(g) for g in found.groups())
    start, end = time(h1, m1), time(h2, m2)
    if start == end:
        raise ValidationFailed("auto_accept_hours: the window must not start where it ends "
                               "(leave it empty for all day)", code="channel_hours_empty")
    return start, end


def check(skip_verify: bool, hours: str) -> None:
    """The options together: a window is of the automatic accepting, so it needs it."""
    parse_hours(hours)
    if hours and not skip_verify:
        raise ValidationFailed("auto_accept_hours: is for skip_verify true (outside the "
                               "window the guide accepts; without skip_verify they always do)",
                               code="channel_hours_verify")


def in_window(hours: str, at: time) -> bool:
    """Whether `at` (the tenant's time of day) is in the window [start, end); a window whose
    end comes first runs past midnight."""
    window = parse_hours(hours)
    if window is None:
        return True
    start, end = window
    if start < end:
        return start <= at < end
    return at >= start or at < end
