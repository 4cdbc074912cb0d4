"""The console's material review queue: materials in a status (pending first), oldest first,
with the contributor's history, the pictures and any sensitive words; approve with a grade,
reject with a reason (the guide is told) or withdraw, one or many at once."""

from __future__ import annotations

import re

from aiohttp import web

from guidebot.settings import GRADES
from guidebot.web.pages import console_auth as auth
from guidebot.web.pages.console import notice, page, render, services_of, today

STATUSES = ("pending", "approved", "rejected", "withdrawn")
ACTIONS = ("approve", "reject", "withdraw")
STORED = re.compile(r"^[0-9a-f]{40}\.(jpg|png)$")  # materials/storage.py names


@page
async def materials(request: web.Request, who: auth.Access) -> web.StreamResponse:
    status = request.query.get("status", "pending")
    if status not in STATUSES:
        status = "pending"
    service = services_of(request).materials
    rows = await service.queue(who.tenant.id, status)
    if status == "approved":
        for row in rows:
            row["stats"] = await service.stats(who.tenant.id, row["id"])
    period = today(who.tenant).strftime("%Y-%m")
    contributors = await service.contributors(who.tenant.id, period)
    done = request.query.get("done", "")
    message = notice(request, "mat.done").format(count=done) if done.isdigit() else ""
    failed = request.query.get("failed", "")
    if failed.isdigit() and int(failed):
        message += " " + notice(request, "mat.failed").format(count=failed)
    return render(request, "materials.html", who=who, active="materials", rows=rows,
                  shown=status, statuses=STATUSES, grades=GRADES, actions=ACTIONS,
                  notice=message, stored=STORED, contributors=contributors, period=period)


@page
async def review(request: web.Request, who: auth.Access) -> web.StreamResponse:
    form = await request.post()
    ids = [str(v) for v in form.getall("id", [])]
    action, grade = str(form.get("action", "")), str(form.get("grade", ""))
    reason = str(form.get("reason", "")).strip()
    status = str(form.get("status", "pending"))
    if action not in ACTIONS or not ids:
        raise web.HTTPSeeOther(f"/console/{who.tenant.id}/materials?status={status}&done=0")
    results = await services_of(request).materials.batch(
        who.tenant.id, ids, action, grade=grade, reason=reason, reviewer="console")
    ok = sum(1 for r in results if r["ok"])
    raise web.HTTPSeeOther(f"/console/{who.tenant.id}/materials?status={status}&done={ok}"
                           f"&failed={len(results) - ok}")


@page
async def picture(request: web.Request, who: auth.Access) -> web.StreamResponse:
    name = request.match_info["name"]
    if not STORED.match(name):
        raise web.HTTPNotFound()
    path = services_of(request).materials.store.path(who.tenant.id, name)
    if not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Cache-Control": "private, max-age=86400",
                                           "X-Content-Type-Options": "nosniff"})


def routes(base: str) -> list[web.RouteDef]:
    return [
        web.get(f"{base}/materials", materials),
        web.post(f"{base}/materials/review", review),
        web.get(f"{base}/materials/pictures/{{name}}", picture),
    ]
