"""The console's 群活码 (group join codes): every code with its QR code, groups, store and
campaign and the customers who joined through it on the range's days, a form that makes one
from live groups (the same service as `POST /api/v1/{t}/group-codes`), and a code's page to
change its groups, campaign, store or auto-created rooms (the same QR code; the same service
as `PATCH …/group-codes/{id}`) or delete it."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from multidict import MultiMapping

from guidebot.contacts.group_codes import Edit, Settings
from guidebot.errors import NotFound, ValidationFailed, WeComError
from guidebot.web.pages import console_auth as auth
from guidebot.web.pages.console import day_range, notice, page, render, services_of, today


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
                  range=days.shown, choices=_choices(live["groups"], []),
                  stores=await records.store_names(who.tenant.id),
                  customers=await records.customer_names(who.tenant.id, sorted(
                      {j["external_userid"] for c in view["codes"] for j in c["joins"]})),
                  created=request.query.get("created", ""),
                  notice=notice(request, f"gc.{done}") if done in ("created", "deleted_done")
                  else "")


@page
async def create(request: web.Request, who: auth.Access) -> web.StreamResponse:
    wanted = _settings(await request.post())
    try:
        code = await services_of(request).group_codes.create(who.tenant.id, wanted)
    except WeComError as exc:
        raise _refused(exc) from None
    raise web.HTTPSeeOther(f"/console/{who.tenant.id}/group-codes?done=created"
                           f"&created={code.id}")


@page
async def group_code(request: web.Request, who: auth.Access) -> web.StreamResponse:
    """A code's settings (its QR code, groups, store, campaign, auto-created rooms) and, while
    it is not deleted, the form that changes them and its 删除 button."""
    services = services_of(request)
    codes = services.group_codes
    code = await codes.view(who.tenant.id, await codes.get(who.tenant.id, _code_id(request)))
    day = today(who.tenant)  # the groups' list only: no figures of days are shown
    live = (await services.groups.list_view(who.tenant, day_from=day, day_to=day))["groups"]
    done = request.query.get("done", "")
    return render(request, "group_code.html", who=who, active="group_codes", code=code,
                  choices=_choices(live, code["groups"]),
                  stores=await services.stats.records.store_names(who.tenant.id),
                  notice=notice(request, "gc.edited") if done == "edited" else "")


@page
async def edit(request: web.Request, who: auth.Access) -> web.StreamResponse:
    """换群不换码: the form's groups, campaign, store and auto-created rooms, asked of WeCom
    first (GroupCodeService.edit); a refusal is worded and changes nothing."""
    code_id = _code_id(request)
    wanted = _settings(await request.post())
    try:
        await services_of(request).group_codes.edit(who.tenant.id, code_id, Edit(
            chat_ids=wanted.chat_ids, campaign=wanted.campaign, store=wanted.store or "",
            auto_create_room=wanted.auto_create_room, room_base_name=wanted.room_base_name,
            room_base_id=wanted.room_base_id))
    except WeComError as exc:
        raise _refused(exc) from None
    raise web.HTTPSeeOther(f"/console/{who.tenant.id}/group-codes/{code_id}?done=edited")


@page
async def delete(request: web.Request, who: auth.Access) -> web.StreamResponse:
    try:
        await services_of(request).group_codes.delete(who.tenant.id, _code_id(request))
    except WeComError as exc:
        raise _refused(exc) from None
    raise web.HTTPSeeOther(f"/console/{who.tenant.id}/group-codes?done=deleted_done")


def _choices(live: list[dict[str, Any]],
             chosen: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The groups a form ticks: the code's own first, in their order (which one of them a
    scan lands in is WeCom's choice, not known; the sandbox takes the first live one), marked
    when no longer live; then the other live groups."""
    by_id = {g["chat_id"]: g for g in live}
    mine = [{"owner": "", **g, **by_id.get(g["chat_id"], {}), "checked": True,
             "live": g["chat_id"] in by_id} for g in chosen]
    taken = {g["chat_id"] for g in chosen}
    return mine + [{**g, "checked": False, "live": True} for g in live
                   if g["chat_id"] not in taken]


def _settings(form: MultiMapping[Any]) -> Settings:
    """The create or edit form's code (its checked groups, in the form's order)."""
    room_id = str(form.get("room_base_id", "") or "0").strip()
    if not room_id.isdigit():
        raise ValidationFailed("room_base_id: must be a whole number", code="group_code_room")
    return Settings(chat_ids=tuple(str(c) for c in form.getall("chat_id", []) if str(c)),
                    campaign=str(form.get("campaign", "")).strip(),
                    store=str(form.get("store", "")) or None,
                    auto_create_room="auto_create_room" in form,
                    room_base_name=str(form.get("room_base_name", "")).strip(),
                    room_base_id=int(room_id))


def _code_id(request: web.Request) -> int:
    raw = request.match_info["code_id"]
    if not raw.isdigit() or not 0 < int(raw) < 2**31:
        raise NotFound(f"code_id: no group code {raw}", code="group_code_unknown", code_id=raw)
    return int(raw)


def _refused(exc: WeComError) -> ValidationFailed:
    """WeCom's refusal as the page words it (nothing was stored or changed)."""
    return ValidationFailed(f"WeCom refused: errcode {exc.errcode}", code="group_code_wecom",
                            errcode=exc.errcode)


def routes(base: str) -> list[web.RouteDef]:
    return [
        web.get(f"{base}/group-codes", group_codes),
        web.post(f"{base}/group-codes", create),
        web.get(f"{base}/group-codes/{{code_id}}", group_code),
        web.post(f"{base}/group-codes/{{code_id}}", edit),
        web.post(f"{base}/group-codes/{{code_id}}/delete", delete),
    ]
