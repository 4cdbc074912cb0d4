"""Admin JSON API for 操作日志: `GET /api/v1/{t}/audit` (audit/log.py)."""

from __future__ import annotations

from aiohttp import web

from guidebot.stats.overview import parse_range
from guidebot.web.api import audit_shapes as shapes
from guidebot.web.api import parsing
from guidebot.web.api.parsing import Endpoint, reply
from guidebot.web.keys import SERVICES

API = "/api/v1/{tenant}"


async def audit_log(request: web.Request) -> web.Response:
    q = parsing.query(request, shapes.AuditQuery)
    services = request.app[SERVICES]
    tenant = services.settings.tenant(request.match_info["tenant"])
    today = services.audit.clock().astimezone(tenant.tz).date()
    day_from, day_to = parse_range(q.from_ or None, q.to or None, today)
    found = await services.audit.page(tenant, day_from, day_to, actor=q.actor, after=q.cursor)
    return reply({"from": day_from.isoformat(), "to": day_to.isoformat(),
                  "actor": q.actor or None, "items": [e.row() for e in found.entries],
                  "next_cursor": found.next})


ENDPOINTS = [
    Endpoint("GET", f"{API}/audit", audit_log,
             "操作日志: HQ's successful changes (every POST, PUT, PATCH and DELETE of this API "
             "and of the console's forms) and console sign-ins and sign-outs in the range (the "
             "tenant's days), newest first, 100 a page; who, the route, its path ids and the "
             "status — never a body", shapes.AuditPage, query=shapes.AuditQuery,
             errors={400: "a bad range or cursor (`code` list.bad_cursor)"}),
]


def routes() -> list[web.RouteDef]:
    return [e.route() for e in ENDPOINTS]
