"""The console's SOP pages: the list (validation, library errors, a timeline preview) and one
SOP's page (per-step conversion, switching it off and on, enrolling an audience by tag or
guide, or a list of customers). Writes go through the same SopService methods as the admin
API (POST /api/v1/{t}/sops/{id}/switch and …/enroll)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from aiohttp import web

from guidebot.content.reload import problems_json
from guidebot.content.sop_spec import Audience
from guidebot.errors import ValidationFailed
from guidebot.sop import views as sop_views
from guidebot.web.audit_trail import nothing_done
from guidebot.web.pages import console_auth as auth
from guidebot.web.pages.console import notice, page, refusal, render, services_of

MAX_CUSTOMERS = 500  # lines of the customer list in one enrolment
_SPLIT = re.compile(r"[\s,，]+")


@page
async def sops(request: web.Request, who: auth.Access) -> web.StreamResponse:
    services = services_of(request)
    currents = await services.sop.ready(who.tenant.id)
    body = await sop_views.sops_view(services.db, who.tenant, currents)
    chosen = request.query.get("sop", "")
    raw_at = request.query.get("added_at", "")
    timeline: dict[str, Any] | None = None
    if chosen and raw_at:
        at = sop_views.parse_added_at(raw_at, who.tenant)
        timeline = sop_views.preview_view(currents.get(chosen), chosen, who.tenant, at)
    return render(request, "sops.html", who=who, active="sops", sops=body["sops"],
                  errors=problems_json(services.library), chosen=chosen,
                  added_at=raw_at or datetime.now(who.tenant.tz).strftime("%Y-%m-%dT%H:%M"),
                  timeline=timeline)


@page
async def sop(request: web.Request, who: auth.Access) -> web.StreamResponse:
    services = services_of(request)
    sop_id = request.match_info["sop_id"]
    currents = await services.sop.ready(who.tenant.id)
    steps = sop_views.conversion_view(currents.get(sop_id), sop_id,
                                      await services.sop.conversion(who.tenant.id))
    body = await sop_views.sops_view(services.db, who.tenant,
                                     {sop_id: currents[sop_id]})
    done = ""
    if "not_sent" in request.query:
        done = notice(request, "drop.stopped").format(**{
            k: request.query.get(k, "0")
            for k in ("not_sent", "cancelled_in_wecom", "already_sent", "pending")})
    return render(request, "sop.html", who=who, active="sops", s=body["sops"][0],
                  steps=steps, enrolled=request.query.get("enrolled", ""), notice=done,
                  open_tasks=await services.sop.step_tasks(who.tenant.id, sop_id),
                  guides=await services.stats.records.guides(who.tenant.id),
                  tags=await services.stats.records.tag_names(who.tenant.id),
                  segments=await services.segments.names(who.tenant.id))


def _back(who: auth.Access, sop_id: str, **query: str) -> web.HTTPSeeOther:
    suffix = "".join(f"&{k}={v}" for k, v in query.items()).replace("&", "?", 1)
    return web.HTTPSeeOther(f"/console/{who.tenant.id}/sops/{sop_id}{suffix}")


@page
async def stop_step(request: web.Request, who: auth.Access) -> web.StreamResponse:
    """停止群发 for one step, then back to the SOP with what the stop did."""
    form = await request.post()
    sop_id = request.match_info["sop_id"]
    raw = str(form.get("step", ""))
    if not raw.isdigit():
        raise ValidationFailed(f"step: {raw[:16]!r} is not a step number", code="sop.no_step",
                               sop_id=sop_id, steps="?")
    stopped, changed = await services_of(request).sop.stop_step(who.tenant.id, sop_id,
                                                                 int(raw))
    if not changed:  # nothing left to stop: the page says what it found
        nothing_done(request)
    raise _back(who, sop_id, **{k: str(stopped[k]) for k in (
        "not_sent", "cancelled_in_wecom", "already_sent", "pending")})


@page
async def switch(request: web.Request, who: auth.Access) -> web.StreamResponse:
    form = await request.post()
    sop_id = request.match_info["sop_id"]
    on = str(form.get("enabled", "")) == "1"
    await services_of(request).sop.switch(who.tenant.id, sop_id, on=on, operator="console")
    raise _back(who, sop_id)


def _words(raw: str) -> tuple[str, ...]:
    return tuple(w for w in _SPLIT.split(raw.strip()) if w)


def _customers(request: web.Request, raw: str) -> list[tuple[str, str]]:
    """Lines of "external_userid guide" (space, tab or comma between)."""
    lines = [line for line in raw.splitlines() if line.strip()]
    if len(lines) > MAX_CUSTOMERS:
        raise ValidationFailed(notice(request, "sop.err_too_many").replace(
            "{n}", str(MAX_CUSTOMERS)))
    out = []
    for n, line in enumerate(lines, 1):
        words = _words(line)
        if len(words) != 2:
            raise ValidationFailed(notice(request, "sop.err_line").replace("{n}", str(n)))
        out.append((words[0], words[1]))
    return out


@page
async def enroll(request: web.Request, who: auth.Access) -> web.StreamResponse:
    form = await request.post()
    sop_id = request.match_info["sop_id"]
    service = services_of(request).sop
    customers = _customers(request, str(form.get("customers", "")))
    tags, guides = _words(str(form.get("tags", ""))), _words(str(form.get("guides", "")))
    raw_segment = str(form.get("segment", ""))
    segment = int(raw_segment) if raw_segment.isdigit() and len(raw_segment) < 10 else None
    if customers and (tags or guides or segment is not None):
        raise ValidationFailed(notice(request, "sop.err_both"))
    if customers:  # the whole list is checked first: a refused line enrolls no one
        refused, enrolled = await service.enroll_list(who.tenant.id, sop_id, customers)
        if refused:
            raise ValidationFailed(notice(request, "sop.err_lines").replace("{lines}", "; ".join(
                notice(request, "sop.err_line_is").replace("{n}", str(n))
                + f" {refusal(request, exc)}" for n, exc in refused)))
    elif tags or guides or segment is not None or str(form.get("groups", "")) == "1":
        # a group SOP: all may be; a segment: its customers as they match now
        enrolled = await service.enroll_audience(
            who.tenant.id, sop_id, Audience(tags_any=tags, guides=guides, segment=segment))
    else:
        raise ValidationFailed(notice(request, "sop.err_none"))
    raise _back(who, sop_id, enrolled=str(enrolled))


def routes(base: str) -> list[web.RouteDef]:
    return [
        web.get(f"{base}/sops", sops),
        web.get(f"{base}/sops/{{sop_id}}", sop),
        web.post(f"{base}/sops/{{sop_id}}/switch", switch),
        web.post(f"{base}/sops/{{sop_id}}/stop", stop_step),
        web.post(f"{base}/sops/{{sop_id}}/enroll", enroll),
    ]
