"""Monthly targets (业绩目标): HQ sets each guide's and store's new customers (adds) and GMV
for a month (YYYY-MM in the tenant's time zone); the month's figures from the daily
statistics show how far each got. Completion is actual ÷ target (None without a target)."""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from guidebot.db.engine import Database
from guidebot.db.repo import targets as repo
from guidebot.db.types import utcnow
from guidebot.errors import ValidationFailed
from guidebot.settings import Settings
from guidebot.stats import definitions, overview

PERIOD = re.compile(r"^(19[7-9][0-9]|2[01][0-9]{2})-(0[1-9]|1[0-2])$")
MAX_ADDS = 1_000_000  # new customers a month: more is a typo
MAX_GMV_FEN = 10**12  # ¥10 billion a month
KINDS = {"guides": "guide", "stores": "store"}


@dataclass(frozen=True)
class Goal:
    """One subject's targets for a month; either may be absent."""

    adds: int | None = None
    gmv_fen: int | None = None


class TargetRefused(ValidationFailed):
    """A target that cannot be set: `field` names it (guides.lina.adds), `reason` says why."""

    def __init__(self, *, field: str, reason: str, code: str, **params: object) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}", code=code, field=field, reason=reason,
                         **params)


def month_span(period: str) -> tuple[date, date]:
    """The first and last day of a YYYY-MM month."""
    if not PERIOD.fullmatch(period):
        raise TargetRefused(field="period", reason="must be YYYY-MM", code="targets.period",
                            period=period)
    year, month = int(period[:4]), int(period[5:])
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def month_of(day_from: date, day_to: date, today: date) -> str | None:
    """The month a range is, when it is exactly one calendar month (or this month so far,
    up to today); else None."""
    if day_from.day != 1 or (day_from.year, day_from.month) != (day_to.year, day_to.month):
        return None
    period = f"{day_from.year:04d}-{day_from.month:02d}"
    return period if day_to in (month_span(period)[1], today) else None


def month_before(period: str) -> str:
    """The YYYY-MM month before a YYYY-MM month."""
    first, _ = month_span(period)
    return (first - timedelta(days=1)).strftime("%Y-%m")


def completion(actual: int, target: int | None) -> float | None:
    """actual ÷ target, to four decimals; None without a (positive) target."""
    return round(actual / target, 4) if target else None


def progress(actual: int, target: int | None, *, money: bool = False) -> str:
    """"23 / 30 · 77%" (money as yuan); "" without a target."""
    if target is None:
        return ""
    shown = definitions.yuan if money else str
    text = f"{shown(actual)} / {shown(target)}"
    if target > 0:
        text += f" · {(actual * 200 + target) // (target * 2)}%"  # whole percent, half-up
    return text


def _check(field: str, value: int | None, top: int) -> None:
    if value is not None and not 0 <= value <= top:
        raise TargetRefused(field=field, reason=f"must be from 0 to {top}",
                            code="targets.range", max=top)


class Targets:
    def __init__(self, settings: Settings, db: Database) -> None:
        self._settings = settings
        self._db = db

    async def set_month(self, tenant: str, period: str,
                        goals: Mapping[str, Mapping[str, Goal]]) -> dict[str, Any]:
        """Replace the month's targets: goals = {"guides": {userid: Goal}, "stores":
        {store_id: Goal}}. Unknown guides or stores and values out of range are refused
        (naming the field) and nothing changes. Answers the month (month())."""
        month_span(period)
        async with self._db.read() as s:
            guides, stores = await repo.known(s, tenant=tenant)
        ids = {"guides": guides, "stores": stores}
        rows: list[dict[str, Any]] = []
        for group in KINDS:
            for subject, goal in sorted(goals.get(group, {}).items()):
                if subject not in ids[group] and group == "guides":
                    raise TargetRefused(field=f"guides.{subject}", reason="no such guide",
                                        code="targets.unknown_guide", id=subject)
                if subject not in ids[group]:
                    raise TargetRefused(field=f"stores.{subject}", reason="no such store",
                                        code="targets.unknown_store", id=subject)
                _check(f"{group}.{subject}.adds", goal.adds, MAX_ADDS)
                _check(f"{group}.{subject}.gmv_fen", goal.gmv_fen, MAX_GMV_FEN)
                if goal.adds is not None or goal.gmv_fen is not None:
                    rows.append({"kind": KINDS[group], "subject": subject,
                                 "adds": goal.adds, "gmv_fen": goal.gmv_fen})
        async with self._db.write() as s:
            await repo.replace(s, tenant=tenant, period=period, rows=rows, now=utcnow())
        return await self.month(tenant, period)

    async def copy_month(self, tenant: str, period: str, source: str) -> dict[str, Any]:
        """复制上月目标: `source`'s targets of guides and stores still here become `period`'s
        where `period` has none for that guide or store; a target `period` has is never
        overwritten. Answers the month (month()) with `copied` (how many guides and stores
        got targets) and `kept` (those `source` has that `period` already had)."""
        month_span(period)
        month_span(source)
        if source == period:
            raise TargetRefused(field="source", reason="must be another month than the one "
                                "copied into", code="targets.same_month", period=period)
        async with self._db.read() as s:
            guides, stores = await repo.known(s, tenant=tenant)
            ids = {"guide": guides, "store": stores}
            rows = [{"kind": r.kind, "subject": r.subject, "adds": r.adds,
                     "gmv_fen": r.gmv_fen}
                    for r in await repo.of_period(s, tenant=tenant, period=source)
                    if r.subject in ids.get(r.kind, set())]
        async with self._db.write() as s:
            copied = await repo.add_missing(s, tenant=tenant, period=period, rows=rows,
                                            now=utcnow())
        return {**await self.month(tenant, period), "copied": copied,
                "kept": len(rows) - copied}

    async def goals(self, tenant: str, period: str) -> dict[str, dict[str, Goal]]:
        """The month's targets: {"guide": {userid: Goal}, "store": {store_id: Goal}}."""
        month_span(period)
        found: dict[str, dict[str, Goal]] = {"guide": {}, "store": {}}
        async with self._db.read() as s:
            for row in await repo.of_period(s, tenant=tenant, period=period):
                found.setdefault(row.kind, {})[row.subject] = Goal(row.adds, row.gmv_fen)
        return found

    async def figures(self, tenant: str, period: str) -> dict[str, dict[str, Any]]:
        """What each guide and store did in the month (the daily statistics):
        {"guides": {userid: totals}, "stores": {store_id: totals}}."""
        day_from, day_to = month_span(period)
        settings = self._settings.tenant(tenant)
        return {group: {r["key"]: r for r in await overview.per_key(
                    self._db, settings, day_from, day_to,
                    "guide" if group == "guides" else "store_id")}
                for group in KINDS}

    async def month(self, tenant: str, period: str) -> dict[str, Any]:
        """The month's targets with what each guide and store did in it (the daily
        statistics over the month) and completion (actual ÷ target, None without one)."""
        day_from, day_to = month_span(period)
        goals = await self.goals(tenant, period)
        done = await self.figures(tenant, period)
        answer: dict[str, Any] = {"period": period, "from": day_from.isoformat(),
                                  "to": day_to.isoformat()}
        for group, kind in KINDS.items():
            answer[group] = [_subject(subject, goal, done[group].get(subject, {}))
                             for subject, goal in sorted(goals[kind].items())]
        return answer


def _subject(subject: str, goal: Goal, done: Mapping[str, Any]) -> dict[str, Any]:
    adds, gmv = int(done.get("adds", 0)), int(done.get("gmv_fen", 0))
    return {"id": subject,
            "adds": {"target": goal.adds, "actual": adds,
                     "completion": completion(adds, goal.adds)},
            "gmv_fen": {"target": goal.gmv_fen, "actual": gmv,
                        "completion": completion(gmv, goal.gmv_fen)}}
