"""Admin JSON API for 微信客服: a guide's kf link (`POST /api/v1/{t}/kf/links`) and 接待时效
(`GET /api/v1/{t}/handoffs/summary`, `GET /api/v1/{t}/handoffs`)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from guidebot.errors import WeComError
from guidebot.stats.overview import parse_range
from guidebot.web.api import handoff_shapes, parsing, shapes
from guidebot.web.api.parsing import Endpoint, reply
from guidebot.web.keys import SERVICES

API = "/api/v1/{tenant}"


async def post_kf_link(request: web.Request) -> web.Response:
    """{guide, open_kfid} → 201 {url, token, guide, open_kfid}: the guide's 微信客服 link."""
    data = await parsing.body(request, shapes.KfLinkCreate)
    try:
        link = await request.app[SERVICES].kf.entries.create_link(
            request.match_info["tenant"], data.guide, data.open_kfid)
    except WeComError as exc:
        return parsing.error(502, None, "WeCom refused kf/add_contact_way",
                             errcode=exc.errcode)
    return reply(link, status=201)


def _range(request: web.Request, q: handoff_shapes.HandoffRange) -> tuple[str, Any, Any]:
    services = request.app[SERVICES]
    tenant = services.settings.tenant(request.match_info["tenant"])
    today = services.reply_times.clock().astimezone(tenant.tz).date()
    return (tenant.id, *parse_range(q.from_ or None, q.to or None, today))


async def handoff_summary(request: web.Request) -> web.Response:
    """Per guide: handoffs in the range, replied, median and average first response, replied
    within the threshold, waiting and overdue now."""
    tenant, day_from, day_to = _range(request, parsing.query(request,
                                                             handoff_shapes.HandoffRange))
    return reply(await request.app[SERVICES].reply_times.summary(tenant, day_from, day_to))


async def handoff_list(request: web.Request) -> web.Response:
    q = parsing.query(request, handoff_shapes.HandoffsQuery)
    tenant, day_from, day_to = _range(request, q)
    return reply(await request.app[SERVICES].reply_times.listing(tenant, q.status, day_from,
                                                                 day_to))


ENDPOINTS = [
    Endpoint("POST", f"{API}/kf/links", post_kf_link,
             "A guide's 微信客服 link: entering through it credits the guide (scene_param)",
             shapes.KfLink, body=shapes.KfLinkCreate, status=201,
             errors={502: "WeCom refused kf/add_contact_way"}),
    Endpoint("GET", f"{API}/handoffs/summary", handoff_summary,
             "接待时效 per guide: 微信客服 handoffs in the range (the tenant's days), replied, "
             "median and average first response, replied within handoff_reply_minutes, "
             "customers waiting and overdue now",
             handoff_shapes.HandoffSummary, query=handoff_shapes.HandoffRange),
    Endpoint("GET", f"{API}/handoffs", handoff_list,
             "Handed-off 微信客服 conversations: the ones waiting for a reply now, or the "
             "handoffs in the range (replied ones or all), with first response and wait",
             handoff_shapes.HandoffList, query=handoff_shapes.HandoffsQuery),
]


def install(app: web.Application) -> None:
    """The route, and every configured account's cursor created at start."""
    app.add_routes([e.route() for e in ENDPOINTS])

    async def ensure_cursors(app: web.Application) -> None:
        await app[SERVICES].kf.ensure_cursors()

    app.on_startup.append(ensure_cursors)
