"""GET /api/v1/{tenant}/usage?period=YYYY-MM: the tenant's own usage (usage/metering.py)."""

from __future__ import annotations

from aiohttp import web

from guidebot.errors import ValidationFailed
from guidebot.usage import metering
from guidebot.web.keys import SERVICES


async def get_usage(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    tenant = services.settings.tenant(request.match_info["tenant"])
    try:
        body = await metering.tenant_usage(services.db, tenant, request.query.get("period", ""))
    except ValidationFailed as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response(body)


def routes() -> list[web.RouteDef]:
    return [web.get("/api/v1/{tenant}/usage", get_usage)]
