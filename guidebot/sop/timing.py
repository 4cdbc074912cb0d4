"""The planner applied to one SOP: the time of step k for an enrollment, in the tenant's zone."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from guidebot.content import sop_planner as planner
from guidebot.content.sop_spec import SopSpec
from guidebot.settings import TenantSettings


def quota_of(tenant: TenantSettings) -> planner.Quota:
    return planner.parse_quota(tenant.quotas.mass_msg_per_customer)


def step_time(spec: SopSpec, index: int, trigger_at: datetime, last_at: datetime | None,
              tenant: TenantSettings) -> datetime | None:
    """When step `index` is due, out of quiet hours (quota is applied when it materialises)."""
    if index >= len(spec.steps):
        return None
    step = spec.steps[index]
    candidate = max(planner.nominal(trigger_at, step.rule.offset, tenant.tz),
                    last_at or trigger_at)
    placed = planner.place(candidate, channel=step.channel,
                           quiet=planner.parse_quiet(spec.quiet_hours), quota=None,
                           taken=Counter(), tz=tenant.tz)
    return placed.at


def start_from(spec: SopSpec, at: datetime, now: datetime, tenant: TenantSettings) -> datetime:
    """Where to place a due step planned for `at` when it is materialised at `now`: `at`
    itself while it is still its day (its quota period) and not quiet hours, else `now` — a
    step planned late (a process was down, a clock jumped) is placed for when it goes out,
    so it cannot land in quiet hours or share a customer's quota period with another."""
    quiet = planner.parse_quiet(spec.quiet_hours)
    period = quota_of(tenant).period
    if (planner.period_key(at, period, tenant.tz) == planner.period_key(now, period, tenant.tz)
            and not quiet.contains(now.astimezone(tenant.tz).time())):
        return at
    return max(at, now)


def place_step(spec: SopSpec, index: int, at: datetime, taken: Sequence[datetime],
               tenant: TenantSettings) -> planner.Placement:
    step = spec.steps[index]
    quota = quota_of(tenant)
    return planner.place(at, channel=step.channel, quiet=planner.parse_quiet(spec.quiet_hours),
                         quota=quota, taken=planner.count_taken(taken, quota, tenant.tz),
                         tz=tenant.tz, on_quota=spec.on_quota)


def preview(spec: SopSpec, trigger_at: datetime,
            tenant: TenantSettings) -> list[dict[str, object]]:
    """Every step of a fresh enrollment at `trigger_at`, with quiet hours and the quota."""
    rules = [s.rule for s in spec.steps]
    placed = planner.plan(trigger_at, rules, quiet=planner.parse_quiet(spec.quiet_hours),
                          quota=quota_of(tenant), tz=tenant.tz, on_quota=spec.on_quota)
    return [{"index": i, "at": p.at.astimezone(tenant.tz).isoformat() if p.at else None,
             "channel": step.channel, "message": step.message,
             **({"note": p.reason} if p.reason else {})}
            for i, (step, p) in enumerate(zip(spec.steps, placed, strict=True))]
