"""The console's 群活码 (group join codes): every code with its QR code, groups, store and
campaign and the customers who joined through it on the range's days, a form that makes one
from live groups (the same service as `POST /api/v1/{t}/group-codes`), and deleting one."""

from __future__ import annotations

from aiohttp import web

from guidebot.contacts.group_codes import Settings
from guidebot.errors import NotFound, ValidationFailed, WeComError
from guidebot.web.pages import console_auth as auth
from guidebot.web.pages.console import day_range, notice, page, render, services_of


@page
async def group_codes(request: web.Request, who: auth.Access) -> web.StreamResponse:
    days = day_range(request, who)
    services = services_of(request)
    view = await services.group_codes.list_view(who.tenant, day_from=days.day_from,
                                                day_to=days.day_to)
    live = await services.groups.list_view(who.tenant, day_from=days.day_from,
                                           day_to=days.day_to)
    records = services.stats.records
    done = request.query.get("done", "")
    return render(request, "group_codes.html", who=who, active="group_codes", view=view,
                  range=days.shown, groups=live["groups"],
                  stores=await records.store_names(who.tenant.id),
                  customers=await records.customer_names(who.tenant.id, sorted(
                      {j["external_userid"] for c in view["codes"] for j in c["joins"]})),
                  created=request.query.get("created", ""),
                  notice=notice(request, f"gc.{done}") if done in ("created", "deleted_done")
                  else "")


@page
async def create(request: web.Request, who: auth.Access) -> web.StreamResponse:
    form = await request.post()
    room_id = str(form.get("room_base_id", "") or "0").strip()
    if not room_id.isdigit():
        raise ValidationFailed("room_base_id: must be a whole number", code="group_code_room")
    try:
        code = await services_of(request).group_codes.create(who.tenant.id, Settings(
            chat_ids=tuple(str(c) for c in form.getall("chat_id", []) if str(c)),
            campaign=str(form.get("campaign", "")).strip(),
            store=str(form.get("store", "")) or None,
            auto_create_room="auto_create_room" in form,
            room_base_name=str(form.get("room_base_name", "")).strip(),
            room_base_id=int(room_id)))
    except WeComError as exc:
        raise _refused(exc) from None
    raise web.HTTPSeeOther(f"/console/{who.tenant.id}/group-codes?done=created"
                           f"&created={code.id}")


@page
async def delete(request: web.Request, who: auth.Access) -> web.StreamResponse:
    raw = request.match_info["code_id"]
    if not raw.isdigit() or not 0 < int(raw) < 2**31:
        raise NotFound(f"code_id: no group code {raw}", code="group_code_unknown", code_id=raw)
    try:
        await services_of(request).group_codes.delete(who.tenant.id, int(raw))
    except WeComError as exc:
        raise _refused(exc) from None
    raise web.HTTPSeeOther(f"/console/{who.tenant.id}/group-codes?done=deleted_done")


def _refused(exc: WeComError) -> ValidationFailed:
    """WeCom's refusal as the page words it (nothing was stored or changed)."""
    return ValidationFailed(f"WeCom refused: errcode {exc.errcode}", code="group_code_wecom",
                            errcode=exc.errcode)


def routes(base: str) -> list[web.RouteDef]:
    return [
        web.get(f"{base}/group-codes", group_codes),
        web.post(f"{base}/group-codes", create),
        web.post(f"{base}/group-codes/{{code_id}}/delete", delete),
    ]
