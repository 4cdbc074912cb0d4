"""Admin API routes for monthly targets (业绩目标): a month's guide and store targets set at
once, and read back with what each did and completion."""

from __future__ import annotations

from aiohttp import web

from guidebot.stats.targets import Goal, TargetRefused, Targets
from guidebot.web.api import parsing
from guidebot.web.api import target_shapes as shapes
from guidebot.web.api.parsing import Endpoint, FieldError, reply
from guidebot.web.keys import SERVICES


def _targets(request: web.Request) -> Targets:
    return request.app[SERVICES].targets


async def put_targets(request: web.Request) -> web.Response:
    period = parsing.path(request, shapes.PeriodPath).period
    data = await parsing.body(request, shapes.TargetsSet)
    goals = {group: {k: Goal(v.adds, v.gmv_fen) for k, v in getattr(data, group).items()}
             for group in ("guides", "stores")}
    try:
        return reply(await _targets(request).set_month(request.match_info["tenant"], period,
                                                       goals))
    except TargetRefused as exc:
        raise FieldError(exc.field, exc.reason) from None


async def copy_targets(request: web.Request) -> web.Response:
    where = parsing.path(request, shapes.CopyPath)
    try:
        return reply(await _targets(request).copy_month(request.match_info["tenant"],
                                                        where.period, where.source))
    except TargetRefused as exc:
        raise FieldError(exc.field, exc.reason) from None


async def get_targets(request: web.Request) -> web.Response:
    period = parsing.path(request, shapes.PeriodPath).period
    return reply(await _targets(request).month(request.match_info["tenant"], period))


API = "/api/v1/{tenant}"
ENDPOINTS = [
    Endpoint("PUT", f"{API}/targets/{{period}}", put_targets,
             "Set a month's targets (YYYY-MM, the tenant's time zone) for guides and stores: "
             "new customers (adds) and GMV in fen, either may be left out; replaces the "
             "month's targets (an empty body clears them); an unknown guide or store is "
             "refused naming the field, and nothing changes",
             shapes.MonthTargets, body=shapes.TargetsSet, params=shapes.PeriodPath),
    Endpoint("GET", f"{API}/targets/{{period}}", get_targets,
             "A month's targets with each guide's and store's figures for the month (the "
             "daily statistics) and completion (actual ÷ target)",
             shapes.MonthTargets, params=shapes.PeriodPath),
    Endpoint("POST", f"{API}/targets/{{period}}/copy-from/{{source}}", copy_targets,
             "复制上月目标: the source month's targets (of guides and stores still here) "
             "become this month's for each guide and store this month has none for; a target "
             "this month has is never overwritten. Answers the month with how many were "
             "copied and kept",
             shapes.MonthTargetsCopied, params=shapes.CopyPath),
]


def routes() -> list[web.RouteDef]:
    return [e.route() for e in ENDPOINTS]
