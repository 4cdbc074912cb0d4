"""The console's customer groups (客户群): the groups with their customers and the joins and
leaves of a date range, one group with everyone who has been in it, and 同步客户群."""

from __future__ import annotations

from aiohttp import web

from guidebot.contacts.group_handover import all_refused
from guidebot.contacts.views import guides_view
from guidebot.errors import StateConflict
from guidebot.web.pages import console_auth as auth
from guidebot.web.pages.console import day_range, notice, page, render, services_of


@page
async def groups(request: web.Request, who: auth.Access) -> web.StreamResponse:
    days = day_range(request, who)
    services = services_of(request)
    owner = request.query.get("owner", "")[:64]
    dismissed = request.query.get("dismissed") == "1"
    view = await services.groups.list_view(who.tenant, day_from=days.day_from, day_to=days.day_to,
                                           owner=owner, dismissed=dismissed)
    synced = notice(request, "grp.synced") if request.query.get("synced") else ""
    return render(request, "groups.html", who=who, active="groups", view=view,
                  range=days.shown,
                  names=await services.stats.records.guide_names(who.tenant.id),
                  owner=owner, dismissed=dismissed, notice=synced)


@page
async def group(request: web.Request, who: auth.Access) -> web.StreamResponse:
    services = services_of(request)
    detail = await services.groups.detail_view(who.tenant.id, request.match_info["chat_id"])
    customers = await services.stats.records.customer_names(
        who.tenant.id, [m["member_id"] for m in detail["members"] if m["kind"] == "customer"])
    guides = (await guides_view(services.db, who.tenant))["guides"]
    said = ""
    if request.query.get("handed"):
        said = notice(request, "grp.handed")
    elif request.query.get("queued"):
        said = notice(request, "grp.hand_queued")
    elif "refused" in request.query:
        said = notice(request, "grp.hand_refused").format(
            code=request.query["refused"][:8] or "—")
    return render(request, "group.html", who=who, active="groups", group=detail,
                  names=await services.stats.records.guide_names(who.tenant.id),
                  customers=customers, notice=said,
                  sends=await services.sop.group_sends(who.tenant.id, detail["chat_id"]),
                  owners=[g for g in guides if g["active"] and g["userid"] != detail["owner"]])


@page
async def hand_over(request: web.Request, who: auth.Access) -> web.StreamResponse:
    """One group to a new owner: groupchat/transfer when its owner has left, onjob_transfer
    otherwise; WeCom's refusal is a refusal (409, its errcode worded); a call that failed is
    queued to be retried, said on the group's page."""
    services = services_of(request)
    chat_id = request.match_info["chat_id"]
    detail = await services.groups.detail_view(who.tenant.id, chat_id)
    guides = (await guides_view(services.db, who.tenant))["guides"]
    left = {g["userid"] for g in guides if not g["active"]}
    result = await services.group_handover.hand_over(
        who.tenant.id, chat_ids=[chat_id], new_owner=str((await request.post()).get(
            "new_owner", "")), resigned=detail["owner"] in left or detail["status"] == 1)
    refused = result["failed"][0]["errcode"] if result["failed"] else ""
    if all_refused(result):
        raise StateConflict(f"WeCom refused the new owner: errcode {refused}",
                            code="grp.hand_refused", errcode=refused)
    # not refused, so a failed group's call failed (errcode None): queued to be retried
    query = "queued=1" if result["failed"] else "handed=1"
    raise web.HTTPSeeOther(f"/console/{who.tenant.id}/groups/{chat_id}?{query}")


@page
async def sync(request: web.Request, who: auth.Access) -> web.StreamResponse:
    await services_of(request).groups.sync(who.tenant.id)
    raise web.HTTPSeeOther(f"/console/{who.tenant.id}/groups?synced=1")


def routes(base: str) -> list[web.RouteDef]:
    return [
        web.get(f"{base}/groups", groups),
        web.post(f"{base}/groups/sync", sync),
        web.get(f"{base}/groups/{{chat_id}}", group),
        web.post(f"{base}/groups/{{chat_id}}/owner", hand_over),
    ]
