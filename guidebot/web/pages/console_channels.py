"""The console's channel codes (渠道活码): every 「联系我」 QR code and 获客助手 link with the
customers it brought, a form that creates one (the same service as `POST /api/v1/{t}/channels`
and `guidebot channel create`), and a code's page to change it (换人不换码) or delete it."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from multidict import MultiMapping

from guidebot.contacts.channels import Edit
from guidebot.contacts.views import channel_json, channels_view, guides_view
from guidebot.errors import NotFound, ValidationFailed, WeComError
from guidebot.web.pages import console_auth as auth
from guidebot.web.pages.console import day_range, notice, page, render, services_of


@page
async def channels(request: web.Request, who: auth.Access) -> web.StreamResponse:
    services = services_of(request)
    codes = (await channels_view(services.db, who.tenant))["channels"]
    guides = (await guides_view(services.db, who.tenant))["guides"]
    records = services.stats.records
    created = request.query.get("created", "")
    said = notice(request, "acq.read_done") if request.query.get("read") else ""
    return render(request, "channels.html", who=who, active="channels",
                  quota=await services.acquisition.quota(who.tenant.id),
                  codes=sorted(codes, key=lambda c: -int(c["id"])),
                  guides=[g for g in guides if g["active"]],
                  names={g["userid"]: g["name"] for g in guides if g["name"]},
                  stores=await records.store_names(who.tenant.id),
                  tags=await records.tag_names(who.tenant.id),
                  messages=sorted(services.library.messages),
                  created=created,
                  notice=notice(request, "ch.created") if created else said)


@page
async def read_quota(request: web.Request, who: auth.Access) -> web.StreamResponse:
    """读取额度: the paid 获客助手 quota read from WeCom now."""
    try:
        await services_of(request).acquisition.read_quota(who.tenant.id)
    except WeComError as exc:
        raise ValidationFailed(f"WeCom refused customer_acquisition_quota: errcode "
                               f"{exc.errcode}", code="acquisition_quota_wecom",
                               errcode=exc.errcode) from None
    raise web.HTTPSeeOther(f"/console/{who.tenant.id}/channels?read=1")


@page
async def create(request: web.Request, who: auth.Access) -> web.StreamResponse:
    form = await request.post()
    try:
        chosen = [str(g) for g in form.getall("guide", []) if str(g)]
        code = await services_of(request).channels.create(
            who.tenant.id, guide=chosen[0] if len(chosen) == 1 else "",
            guides=chosen if len(chosen) > 1 else [],
            store=str(form.get("store", "")) or None,
            campaign=str(form.get("campaign", "")).strip(),
            tags=[str(t) for t in form.getall("tag", [])],
            welcome_message=str(form.get("welcome", "")),
            kind=str(form.get("kind", "qr")),
            backup_guides=[str(g) for g in form.getall("backup", []) if str(g)],
            daily_limit=_limit(str(form.get("daily_limit", "") or "0")),
            skip_verify="skip_verify" in form, auto_accept_hours=_hours(form))
    except WeComError as exc:
        raise _refused(exc) from None
    raise web.HTTPSeeOther(f"/console/{who.tenant.id}/channels?created={code.id}")


@page
async def channel(request: web.Request, who: auth.Access) -> web.StreamResponse:
    """A code's settings and forms, and its figures over the page's range: guidebot's adds
    through it, and for a link WeCom's clicks and new customers (a refusal worded)."""
    services = services_of(request)
    row = await services.channels.get(who.tenant.id, _code_id(request))
    code = channel_json(row)
    figures = await services.acquisition.statistic(who.tenant, row,
                                                   *day_range(request, who))
    guides = (await guides_view(services.db, who.tenant))["guides"]
    records = services.stats.records
    done = request.query.get("done", "")
    return render(request, "channel.html", who=who, active="channels", code=code,
                  figures=figures, range={"from": figures["from"], "to": figures["to"]},
                  guides=[g for g in guides if g["active"]],
                  names={g["userid"]: g["name"] for g in guides if g["name"]},
                  stores=await records.store_names(who.tenant.id),
                  tags=await records.tag_names(who.tenant.id),
                  messages=sorted(services.library.messages),
                  notice=notice(request, f"ch.{done}") if done in ("edited", "deleted") else "")


@page
async def edit(request: web.Request, who: auth.Access) -> web.StreamResponse:
    """换人不换码: the form's guides, limit, backups, store, campaign, tags, welcome and
    自动通过好友."""
    form = await request.post()
    code_id = _code_id(request)
    services = services_of(request)
    try:
        await services.channels.edit(who.tenant.id, code_id, Edit(
            guides=tuple(str(g) for g in form.getall("guide", []) if str(g)),
            backup_guides=tuple(str(g) for g in form.getall("backup", []) if str(g)),
            daily_limit=_limit(str(form.get("daily_limit", "") or "0")),
            store=str(form.get("store", "")), campaign=str(form.get("campaign", "")).strip(),
            tags=tuple(str(t) for t in form.getall("tag", [])),
            welcome_message=str(form.get("welcome", "")),
            skip_verify="skip_verify" in form, auto_accept_hours=_hours(form)))
    except WeComError as exc:
        raise _refused(exc) from None
    raise web.HTTPSeeOther(f"/console/{who.tenant.id}/channels/{code_id}?done=edited")


@page
async def delete(request: web.Request, who: auth.Access) -> web.StreamResponse:
    code_id = _code_id(request)
    try:
        await services_of(request).channels.delete(who.tenant.id, code_id)
    except WeComError as exc:
        raise _refused(exc) from None
    raise web.HTTPSeeOther(f"/console/{who.tenant.id}/channels/{code_id}?done=deleted")


def _refused(exc: WeComError) -> ValidationFailed:
    """WeCom's refusal as the page words it (nothing was stored or changed)."""
    return ValidationFailed(f"WeCom refused: errcode {exc.errcode}", code="channel_wecom",
                            errcode=exc.errcode)


def _code_id(request: web.Request) -> int:
    raw = request.match_info["code_id"]
    if not raw.isdigit() or not 0 < int(raw) < 2**31:
        raise NotFound(f"code_id: no channel code {raw}", code="channel_unknown", code_id=raw)
    return int(raw)


def _limit(raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise ValidationFailed("daily_limit must be a whole number", code="channel_limit",
                               field="daily_limit") from None


def _hours(form: MultiMapping[Any]) -> str:
    """自动通过时段 from the form's two times ("" when both are empty; one alone is refused
    by the service as not HH:MM-HH:MM). A browser may send seconds: HH:MM is kept."""
    start = str(form.get("accept_from", "")).strip()[:5]
    end = str(form.get("accept_to", "")).strip()[:5]
    return f"{start}-{end}" if start or end else ""


def routes(base: str) -> list[web.RouteDef]:
    return [web.get(f"{base}/channels", channels), web.post(f"{base}/channels", create),
            web.post(f"{base}/channels/quota", read_quota),  # before {code_id}
            web.get(f"{base}/channels/{{code_id}}", channel),
            web.post(f"{base}/channels/{{code_id}}", edit),
            web.post(f"{base}/channels/{{code_id}}/delete", delete)]
