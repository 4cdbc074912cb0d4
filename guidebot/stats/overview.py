"""The figures of the data centre, read from the daily statistics only (never raw events)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from guidebot.db.engine import Database
from guidebot.db.repo import stats as repo
from guidebot.errors import ValidationFailed
from guidebot.settings import TenantSettings
from guidebot.stats import definitions as d
from guidebot.stats import layers as layers_

MAX_DAYS = 366


def parse_range(raw_from: str | None, raw_to: str | None, today: date) -> tuple[date, date]:
    """?from=&to= as dates (default: the 30 days up to today); at most a year, from ≤ to."""
    try:
        day_to = date.fromisoformat(raw_to) if raw_to else today
        day_from = date.fromisoformat(raw_from) if raw_from else day_to - timedelta(days=29)
    except ValueError as exc:
        raise ValidationFailed("from and to must be dates as YYYY-MM-DD",
                               code="range.dates") from exc
    if day_from > day_to:
        raise ValidationFailed("from must not be after to", code="range.order")
    if (day_to - day_from).days >= MAX_DAYS:
        raise ValidationFailed(f"a range covers at most {MAX_DAYS} days", code="range.too_long",
                               max_days=MAX_DAYS)
    return day_from, day_to


PRESETS = ("today", "last_7", "last_30", "this_month", "last_month")


def range_presets(today: date) -> list[tuple[str, date, date]]:
    """The ranges a console page offers one click away, in the tenant's days: today, the
    last 7 and 30 days (today included), this month so far and last month."""
    first = today.replace(day=1)
    last_month_end = first - timedelta(days=1)
    spans = ((today, today), (today - timedelta(days=6), today),
             (today - timedelta(days=29), today), (first, today),
             (last_month_end.replace(day=1), last_month_end))
    return [(name, start, end) for name, (start, end) in zip(PRESETS, spans, strict=True)]


def _totals(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {name: sum(int(r[name]) for r in rows) for name in repo.COUNTS}


def _derived(t: dict[str, int]) -> dict[str, Any]:
    adds = t["adds_code"] + t["adds_other"]
    return {"adds": adds, "net_growth": adds - t["deletions"],
            "orders_existing": t["orders"] - t["orders_new"],
            "gmv_existing_fen": t["gmv_fen"] - t["gmv_new_fen"]}


def _group_derived(t: dict[str, int]) -> dict[str, int]:
    return {"group_net": t["group_joins"] - t["group_leaves"]}


def _group_row(row: dict[str, Any] | None) -> dict[str, int]:
    counts = {name: int(row[name]) if row else 0 for name in repo.GROUP_COUNTS}
    return {**counts, **_group_derived(counts)}


async def overview(db: Database, tenant: TenantSettings, day_from: date,
                   day_to: date) -> dict[str, Any]:
    tier_names = [name for name, _ in d.VALUE_TIERS] + [layers_.NO_TIER]
    async with db.read() as s:
        rows = await repo.per_day(s, tenant=tenant.id, day_from=day_from.isoformat(),
                                  day_to=day_to.isoformat())
        layers = await repo.layer_counts(s, tenant=tenant.id,
                                         bounds=layers_.bounds(day_from, day_to),
                                         tiers=tier_names)
        group_rows, group_members = await repo.group_per_day(
            s, tenant=tenant.id, day_from=day_from.isoformat(), day_to=day_to.isoformat())
    by_day = {r["day"]: r for r in rows}
    group_days = {r["day"]: r for r in group_rows}
    days = []
    for n in range((day_to - day_from).days + 1):
        key = (day_from + timedelta(days=n)).isoformat()
        row = {name: int(by_day[key][name]) if key in by_day else 0 for name in repo.COUNTS}
        days.append({"day": key, **row, **_derived(row), **_group_row(group_days.get(key))})
    totals = _totals(rows)
    group_totals = {name: sum(int(r[name]) for r in group_rows) for name in repo.GROUP_COUNTS}
    new_customers = totals["new_customers_code"] + totals["new_customers_other"]
    tiers = {name: layers[f"tier_{name}"] for name in tier_names}
    return {
        "tenant": tenant.id, "timezone": tenant.timezone,
        "from": day_from.isoformat(), "to": day_to.isoformat(),
        "totals": {**totals, **_derived(totals), "base": layers["base"], **group_totals,
                   **_group_derived(group_totals), "group_members": group_members},
        "funnel": {"added": new_customers, "first_purchase": totals["first_purchases"],
                   "repurchase": totals["repurchases"]},
        "layers": {k: layers[k] for k in ("new", "active", "dormant", "lost")},
        "value_tiers": tiers,
        "days": days,
    }


def empty_row(key: str) -> dict[str, Any]:
    """A guide's or store's totals over a range in which nothing of theirs was counted."""
    zeros = {n: 0 for n in repo.COUNTS}
    return {"key": key, **zeros, **_derived(zeros), **_group_row(None), "group_members": 0}


def credited(row: dict[str, Any]) -> bool:
    """Whether anything was counted for a per_key row over its range (the group members it
    carries from before the range aside)."""
    return any(row[n] for n in (*repo.COUNTS, *repo.GROUP_COUNTS))


async def per_key(db: Database, tenant: TenantSettings, day_from: date, day_to: date,
                  key: str, store_id: str | None = None) -> list[dict[str, Any]]:
    """Totals per guide or per store over the range, most GMV first; with `store_id`, what
    was credited in that store only (a guide who moved has their figures in each store)."""
    async with db.read() as s:
        rows = await repo.per_key(s, tenant=tenant.id, day_from=day_from.isoformat(),
                                  day_to=day_to.isoformat(), key=key, store_id=store_id)
        groups = await repo.group_per_key(s, tenant=tenant.id, day_from=day_from.isoformat(),
                                          day_to=day_to.isoformat(), key=key,
                                          store_id=store_id)
    out = [{"key": r["key"], **{n: int(r[n]) for n in repo.COUNTS},
            **_derived({n: int(r[n]) for n in repo.COUNTS}),
            **_group_row(groups.get(r["key"])),
            "group_members": groups.pop(r["key"], {}).get("group_members", 0)}
           for r in rows]
    out += [{**empty_row(k), **_group_row(g), "group_members": g["group_members"]}
            for k, g in groups.items()]  # owners with group members and nothing else
    return sorted(out, key=lambda r: (-r["gmv_fen"], -r["adds"], r["key"]))
