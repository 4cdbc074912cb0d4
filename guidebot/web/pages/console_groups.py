"""The console's customer groups (客户群): the groups with their customers and the joins and
leaves of a date range, one group with everyone who has been in it, and 同步客户群."""

from __future__ import annotations

from aiohttp import web

from guidebot.stats.overview import parse_range
from guidebot.web.pages import console_auth as auth
from guidebot.web.pages.console import notice, page, render, services_of, today


@page
async def groups(request: web.Request, who: auth.Access) -> web.StreamResponse:
    day_from, day_to = parse_range(request.query.get("from"), request.query.get("to"),
                                   today(who.tenant))
    services = services_of(request)
    owner = request.query.get("owner", "")[:64]
    dismissed = request.query.get("dismissed") == "1"
    view = await services.groups.list_view(who.tenant, day_from=day_from, day_to=day_to,
                                           owner=owner, dismissed=dismissed)
    synced = notice(request, "grp.synced") if request.query.get("synced") else ""
    return render(request, "groups.html", who=who, active="groups", view=view,
                  range={"from": day_from.isoformat(), "to": day_to.isoformat()},
                  names=await services.stats.records.guide_names(who.tenant.id),
                  owner=owner, dismissed=dismissed, notice=synced)


@page
async def group(request: web.Request, who: auth.Access) -> web.StreamResponse:
    services = services_of(request)
    detail = await services.groups.detail_view(who.tenant.id, request.match_info["chat_id"])
    customers = await services.stats.records.customer_names(
        who.tenant.id, [m["member_id"] for m in detail["members"] if m["kind"] == "customer"])
    return render(request, "group.html", who=who, active="groups", group=detail,
                  names=await services.stats.records.guide_names(who.tenant.id),
                  customers=customers)


@page
async def sync(request: web.Request, who: auth.Access) -> web.StreamResponse:
    await services_of(request).groups.sync(who.tenant.id)
    raise web.HTTPSeeOther(f"/console/{who.tenant.id}/groups?synced=1")


def routes(base: str) -> list[web.RouteDef]:
    return [
        web.get(f"{base}/groups", groups),
        web.post(f"{base}/groups/sync", sync),
        web.get(f"{base}/groups/{{chat_id}}", group),
    ]
