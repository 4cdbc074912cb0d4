"""The console's material review queue: materials in a status (pending first), oldest first,
with the contributor's history, the pictures and any sensitive words; approve with a grade,
reject with a reason (the guide is told) or withdraw, one or many at once."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from aiohttp import web

from guidebot.content.library import PICTURE_BYTES
from guidebot.content.materials import MAX_PICTURES, Content
from guidebot.errors import StateConflict, ValidationFailed
from guidebot.settings import GRADES
from guidebot.web.pages import console_auth as auth
from guidebot.web.pages.console import notice, page, render, services_of, today

STATUSES = ("pending", "approved", "rejected", "withdrawn")
ACTIONS = ("approve", "reject", "withdraw")
STORED = re.compile(r"^[0-9a-f]{40}\.(jpg|png)$")  # materials/storage.py names
# The new-material form alone may be larger than the app's 1 MiB request limit: up to 9
# pictures of the largest size kept, plus its text fields and the multipart framing.
FORM_FIELDS_BYTES = 1024 * 1024
UPLOAD_BYTES = MAX_PICTURES * PICTURE_BYTES[1] + FORM_FIELDS_BYTES
Route = Callable[[web.Request], Awaitable[web.StreamResponse]]


def body_limit(limit: int, handler: Route) -> Route:
    """The route reads bodies of up to `limit` bytes (every other keeps the app's limit)."""
    async def wrapped(request: web.Request) -> web.StreamResponse:
        clone = request.clone(client_max_size=limit)  # a copy of the request's own state
        try:
            return await handler(clone)
        finally:  # what the view set, for the middlewares (操作日志's nothing_done)
            request.update(clone)
    wrapped.__name__ = getattr(handler, "__name__", "handler")
    return wrapped


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
    if request.query.get("created"):
        message = notice(request, "mat.created")
        refused = request.query.get("refused", "")
        if refused.isdigit() and int(refused):
            message += " " + notice(request, "mat.refused").format(count=refused)
    failed = request.query.get("failed", "")
    if failed.isdigit() and int(failed):
        message += " " + notice(request, "mat.failed").format(count=failed)
    return render(request, "materials.html", who=who, active="materials", rows=rows,
                  shown=status, statuses=STATUSES, grades=GRADES, actions=ACTIONS,
                  notice=message, stored=STORED, contributors=contributors, period=period,
                  counts=await service.counts(who.tenant.id))


@page
async def review(request: web.Request, who: auth.Access) -> web.StreamResponse:
    """审核 the ticked materials; refused when none is ticked or no action chosen (400), or
    when every one was refused (409: nothing done)."""
    form = await request.post()
    ids = [str(v) for v in form.getall("id", [])]
    action, grade = str(form.get("action", "")), str(form.get("grade", ""))
    reason = str(form.get("reason", "")).strip()
    status = str(form.get("status", "pending"))
    if action not in ACTIONS or not ids:
        raise ValidationFailed("no material ticked or no action chosen",
                               code="mat.none_chosen")
    results = await services_of(request).materials.batch(
        who.tenant.id, ids, action, grade=grade, reason=reason, reviewer="console")
    ok = sum(1 for r in results if r["ok"])
    if not ok:
        raise StateConflict(f"none of the {len(results)} materials could be reviewed",
                            code="mat.none_done", count=len(results))
    raise web.HTTPSeeOther(f"/console/{who.tenant.id}/materials?status={status}&done={ok}"
                           f"&failed={len(results) - ok}")


def _words(raw: object) -> tuple[str, ...]:
    """Comma, 、 or space separated words of a form field, each 1-64 characters."""
    parts = re.split(r"[,，、\s]+", str(raw or ""))
    return tuple(dict.fromkeys(p[:64] for p in parts if p))[:20]


@page
async def create(request: web.Request, who: auth.Access) -> web.StreamResponse:
    """HQ's new material: text, skus, categories, occasions, a grade (approved at once) and
    up to 9 pictures (JPG/PNG, each at most 10 MB; the form at most UPLOAD_BYTES)."""
    form = await request.post()
    service = services_of(request).materials
    uploads = [f.file.read() for f in form.getall("picture", [])
               if isinstance(f, web.FileField) and f.filename]
    kept, refused = await service.keep(who.tenant.id, uploads[:MAX_PICTURES])
    grade = str(form.get("grade", ""))
    link = {k: str(form.get(f"link_{k}", "")).strip() for k in ("title", "url")}
    content = Content(
        title=str(form.get("title", "")).strip()[:64], text=str(form.get("text", "")).strip(),
        pictures=tuple(kept), link=tuple(sorted(link.items())) if link["url"] else (),
        skus=_words(form.get("skus")), categories=_words(form.get("categories")),
        occasions=_words(form.get("occasions")))
    made = await service.create(who.tenant.id, content, source="hq",
                                grade=grade if grade in GRADES else "", editor="console")
    raise web.HTTPSeeOther(f"/console/{who.tenant.id}/materials?status={made.status}"
                           f"&created={made.id}&refused={refused}")


@page
async def picture(request: web.Request, who: auth.Access) -> web.StreamResponse:
    name = request.match_info["name"]
    if not STORED.fullmatch(name):
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
        web.post(f"{base}/materials/new", body_limit(UPLOAD_BYTES, create)),
        web.get(f"{base}/materials/pictures/{{name}}", picture),
    ]
