"""GET /api/v1/{tenant}/metrics/overview?from=YYYY-MM-DD&to=YYYY-MM-DD: the data centre's
figures as JSON (the same numbers as the console's overview; definitions in stats/)."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from guidebot.errors import ValidationFailed
from guidebot.stats.overview import parse_range
from guidebot.web.keys import SERVICES


async def get_overview(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    tenant = services.settings.tenant(request.match_info["tenant"])
    try:
        day_from, day_to = parse_range(request.query.get("from"), request.query.get("to"),
                                       datetime.now(tenant.tz).date())
    except ValidationFailed as exc:
        return web.json_response({"error": str(exc)}, status=400)
    body = await services.stats.overview(tenant.id, day_from, day_to)
    body["groups"] = await services.groups.totals(tenant, day_from=day_from, day_to=day_to)
    return web.json_response(body)


def routes() -> list[web.RouteDef]:
    return [web.get("/api/v1/{tenant}/metrics/overview", get_overview)]
