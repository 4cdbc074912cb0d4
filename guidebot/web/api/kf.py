"""Admin JSON API for 微信客服: a guide's kf link (`POST /api/v1/{t}/kf/links`)."""

from __future__ import annotations

from aiohttp import web

from guidebot.errors import WeComError
from guidebot.web.api import parsing, shapes
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


ENDPOINTS = [
    Endpoint("POST", f"{API}/kf/links", post_kf_link,
             "A guide's 微信客服 link: entering through it credits the guide (scene_param)",
             shapes.KfLink, body=shapes.KfLinkCreate, status=201,
             errors={502: "WeCom refused kf/add_contact_way"}),
]


def install(app: web.Application) -> None:
    """The route, and every configured account's cursor created at start."""
    app.add_routes([e.route() for e in ENDPOINTS])

    async def ensure_cursors(app: web.Application) -> None:
        await app[SERVICES].kf.ensure_cursors()

    app.on_startup.append(ensure_cursors)
