"""Admin JSON API for 会话质检: `GET /api/v1/{t}/chat/flags` (chat/watch.py)."""

from __future__ import annotations

from aiohttp import web

from guidebot.stats.overview import parse_range
from guidebot.web.api import parsing
from guidebot.web.api import watch_shapes as shapes
from guidebot.web.api.parsing import Endpoint, reply
from guidebot.web.keys import SERVICES

API = "/api/v1/{tenant}"


async def chat_flags(request: web.Request) -> web.Response:
    q = parsing.query(request, shapes.FlagsQuery)
    services = request.app[SERVICES]
    tenant = services.settings.tenant(request.match_info["tenant"])
    today = services.watch.clock().astimezone(tenant.tz).date()
    day_from, day_to = parse_range(q.from_ or None, q.to or None, today)
    return reply(await services.watch.report(tenant.id, day_from, day_to,
                                             guide=q.guide or None, rule=q.rule or None))


ENDPOINTS = [
    Endpoint("GET", f"{API}/chat/flags", chat_flags,
             "会话质检: 微信客服 messages holding a word of chat/watch_words.toml in the range "
             "(the tenant's days), counted per guide and per rule, and listed with their text",
             shapes.FlagReport, query=shapes.FlagsQuery),
]


def routes() -> list[web.RouteDef]:
    return [e.route() for e in ENDPOINTS]
