"""Exclusive-guide binding rules (DESIGN §5.4), as pure functions over binding periods."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum


@dataclass(frozen=True)
class Period:
    guide: str
    started_at: datetime
    ended_at: datetime | None = None
    end_reason: str = ""


class Decision(Enum):
    KEEP = "keep"  # the add changes nothing
    BIND = "bind"  # no valid binding: the adding guide is bound
    TAKE_OVER = "take_over"  # protection over (or transfer pending): end current, bind adder


def valid_at(period: Period, at: datetime, validity_days: int) -> bool:
    if period.started_at > at:
        return False
    if period.ended_at is not None and period.ended_at <= at:
        return False
    return validity_days <= 0 or at < period.started_at + timedelta(days=validity_days)


def current(periods: list[Period], at: datetime, validity_days: int) -> Period | None:
    """The binding in force at `at` (the latest-started valid one)."""
    valid = [p for p in periods if valid_at(p, at, validity_days)]
    return max(valid, key=lambda p: p.started_at) if valid else None


def on_add(current_period: Period | None, guide: str, at: datetime,
           protection_days: int) -> Decision:
    """What a guide adding the customer at `at` does to the binding in force."""
    if current_period is None:
        return Decision.BIND
    if current_period.guide == guide:
        return Decision.KEEP
    if current_period.end_reason == "transfer_pending":
        return Decision.TAKE_OVER
    if at >= current_period.started_at + timedelta(days=protection_days):
        return Decision.TAKE_OVER
    return Decision.KEEP
