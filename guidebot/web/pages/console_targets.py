"""The console's monthly targets page (业绩目标): HQ sets a month's new customers and GMV
for every guide and store, beside what each did in the month so far."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from guidebot.stats import definitions
from guidebot.stats.targets import (
    Goal,
    TargetRefused,
    Targets,
    month_before,
    month_span,
    progress,
)
from guidebot.web.pages import console_auth as auth
from guidebot.web.pages.console import notice, page, render, services_of, today

_FIELD = re.compile(r"^(guides|stores)\.(.+)\.(adds|gmv)$")
_STORED = re.compile(r"^(guides|stores)\.(.+)\.(adds|gmv_fen)$")


def _targets(request: web.Request) -> Targets:
    return services_of(request).targets


def _period(request: web.Request, who: auth.Access, raw: str | None) -> str:
    period = (raw or "").strip() or today(who.tenant).strftime("%Y-%m")
    month_span(period)  # refused when not YYYY-MM
    return period


@page
async def targets(request: web.Request, who: auth.Access) -> web.StreamResponse:
    period = _period(request, who, request.query.get("period"))
    goals = await _targets(request).goals(who.tenant.id, period)
    figures = await _targets(request).figures(who.tenant.id, period)
    records = services_of(request).stats.records
    stores = await records.store_names(who.tenant.id)
    # every guide and store is listed, with its targets or without
    rows = {"guides": [{"id": g["guide"], "name": g["name"], "store": g["store_name"],
                        **_row(goals["guide"].get(g["guide"]),
                               figures["guides"].get(g["guide"], {}))}
                       for g in await records.guides(who.tenant.id)],
            "stores": [{"id": s, "name": n, **_row(goals["store"].get(s),
                                                   figures["stores"].get(s, {}))}
                       for s, n in sorted(stores.items())]}
    saved = notice(request, "targets.done") if request.query.get("done") else ""
    copied, kept = request.query.get("copied", ""), request.query.get("kept", "")
    if copied.isdigit() and kept.isdigit():
        saved = notice(request, "targets.copied").format(
            source=month_before(period), copied=int(copied), kept=int(kept))
    return render(request, "targets.html", who=who, active="targets", period=period,
                  rows=rows, notice=saved, source=month_before(period))


def _row(goal: Goal | None, figures: dict[str, Any]) -> dict[str, Any]:
    goal = goal or Goal()
    adds, gmv = int(figures.get("adds", 0)), int(figures.get("gmv_fen", 0))
    return {"adds_target": goal.adds, "gmv_target": goal.gmv_fen, "adds": adds,
            "gmv_fen": gmv, "adds_progress": progress(adds, goal.adds),
            "gmv_progress": progress(gmv, goal.gmv_fen, money=True),
            "gmv_input": "" if goal.gmv_fen is None else
            f"{goal.gmv_fen // 100}.{goal.gmv_fen % 100:02d}"}


def _number(text: str, *, money: bool) -> int | None | bool:
    """The box's target (None: blank), False when it is not one."""
    text = text.strip()
    if not text:
        return None
    value = definitions.fen_of_yuan(text) if money else (
        int(text) if text.isdigit() else None)
    return False if value is None or value < 0 else value


async def _name(request: web.Request, who: auth.Access, group: str, subject: str) -> str:
    """The guide's or store's name, else its id."""
    records = services_of(request).stats.records
    names = ({g["guide"]: g["name"] for g in await records.guides(who.tenant.id)}
             if group == "guides" else await records.store_names(who.tenant.id))
    return str(names.get(subject) or subject)


async def _refused(request: web.Request, who: auth.Access, group: str, subject: str,
                   what: str) -> TargetRefused:
    """A box that is not a target, worded by the guide's or store's name and the column."""
    name = await _name(request, who, group, subject)
    if what == "gmv":
        return TargetRefused(field=f"{group}.{subject}.gmv_fen", reason="must be a number",
                             code="targets.gmv_number", name=name)
    return TargetRefused(field=f"{group}.{subject}.{what}", reason="must be a number",
                         code="targets.adds_number", name=name)


async def _named(request: web.Request, who: auth.Access, exc: TargetRefused) -> TargetRefused:
    """A target above the most (targets.range, naming guides.lina.gmv_fen) worded by the
    guide's or store's name and the column, GMV in yuan."""
    found = _STORED.fullmatch(exc.field)
    if exc.code != "targets.range" or found is None:
        return exc
    group, subject, what = found.groups()
    name = await _name(request, who, group, subject)
    top = int(str(exc.params["max"]))
    if what == "gmv_fen":
        return TargetRefused(field=exc.field, reason=exc.reason, code="targets.gmv_range",
                             name=name, max=definitions.yuan(top))
    return TargetRefused(field=exc.field, reason=exc.reason, code="targets.adds_range",
                         name=name, max=top)


@page
async def save(request: web.Request, who: auth.Access) -> web.StreamResponse:
    """HQ replaces the month's targets with the form's (a blank box: no target)."""
    form = await request.post()
    period = _period(request, who, str(form.get("period", "")))
    goals: dict[str, dict[str, dict[str, int | None]]] = {"guides": {}, "stores": {}}
    for key, value in form.items():
        found = _FIELD.fullmatch(key)
        if found is None:
            continue
        group, subject, what = found.groups()
        number = _number(str(value), money=what == "gmv")
        if number is False:
            raise await _refused(request, who, group, subject, what)
        goals[group].setdefault(subject, {})[what] = number
    try:
        await _targets(request).set_month(who.tenant.id, period, {
            group: {s: Goal(v.get("adds"), v.get("gmv")) for s, v in subjects.items()}
            for group, subjects in goals.items()})
    except TargetRefused as exc:
        raise await _named(request, who, exc) from None
    raise web.HTTPSeeOther(f"/console/{who.tenant.id}/targets?period={period}&done=1")


@page
async def copy(request: web.Request, who: auth.Access) -> web.StreamResponse:
    """复制上月目标: the month before's targets into the month, for the guides and stores
    it has none for (never overwriting one)."""
    form = await request.post()
    period = _period(request, who, str(form.get("period", "")))
    done = await _targets(request).copy_month(who.tenant.id, period, month_before(period))
    raise web.HTTPSeeOther(f"/console/{who.tenant.id}/targets?period={period}"
                           f"&copied={done['copied']}&kept={done['kept']}#notice")


def routes(base: str) -> list[web.RouteDef]:
    return [web.get(f"{base}/targets", targets), web.post(f"{base}/targets", save),
            web.post(f"{base}/targets/copy", copy)]
