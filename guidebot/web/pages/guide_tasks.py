"""The page a guide's task card opens: GET /g/{tenant}/tasks/{id}?sig=… (no login; the
signed link names one task, guidebot/sop/guide_links.py). Unknown, unsigned or mis-signed
links all answer 404, so a link reveals nothing about other tasks."""

from __future__ import annotations

import re

from aiohttp import web
from jinja2 import Environment, PackageLoader, select_autoescape

from guidebot.sop import guide_links
from guidebot.web.keys import SERVICES

_TASK_ID = re.compile(r"[0-9]{1,18}")
_PAGES = Environment(loader=PackageLoader("guidebot", "templates"),
                     autoescape=select_autoescape(["html"]))


async def task_page(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    tenant = services.settings.tenants.get(request.match_info["tenant"])
    raw_id = request.match_info["task_id"]
    # ASCII digits only ("²" passes isdigit but not int()) and within a BIGINT.
    if tenant is None or not _TASK_ID.fullmatch(raw_id) or not guide_links.valid(
            tenant, int(raw_id), request.query.get("sig", "")):
        raise web.HTTPNotFound()
    page = await services.sop.guide_page(tenant.id, int(raw_id))
    if page is None:
        raise web.HTTPNotFound()
    html = _PAGES.get_template("guide_task.html").render(page=page)
    return web.Response(text=html, content_type="text/html",
                        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


def routes() -> list[web.RouteDef]:
    return [web.get("/g/{tenant}/tasks/{task_id}", task_page)]
