"""The console's 标签管理: the corp tag library's groups and tags, each tag's customers (a link
to the customers page searching that tag), forms to add tags (to a group or in a new group),
rename or reorder a tag, and delete a tag or a whole group (a ticked box confirms); 预打标签:
a CSV upload of tags for customers known by unionid, with the pending, marking, failed,
applied and tag-deleted counts. Through the
same service as the admin API: WeCom first, a refusal worded and nothing changed."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from guidebot.contacts.pretags import nothing_new, read_csv
from guidebot.contacts.tag_library import NewTag, TagLibrary
from guidebot.errors import ValidationFailed
from guidebot.web.audit_trail import nothing_done
from guidebot.web.pages import console_auth as auth
from guidebot.web.pages.console import notice, page, render, services_of
from guidebot.web.pages.console_materials import body_limit

DONE = ("added", "edited", "deleted", "group_deleted")
UPLOAD_BYTES = 2 * 1024 * 1024  # 10,000 lines of unionid and a few tags
# the form this route reads (the app's limit is 1 MiB): a file up to 4 times too large is still
# read, so its refusal is worded; a larger body is refused by aiohttp (413)
FORM_BYTES = 4 * UPLOAD_BYTES


def _library(request: web.Request) -> TagLibrary:
    return services_of(request).tag_library


def _done(who: auth.Access, what: str, name: str) -> web.HTTPSeeOther:
    query = urlencode({"done": what, "name": name})
    return web.HTTPSeeOther(f"/console/{who.tenant.id}/tags?{query}#notice")


@page
async def tags(request: web.Request, who: auth.Access) -> web.StreamResponse:
    done = request.query.get("done", "")
    said = (notice(request, f"tags.{done}").format(name=request.query.get("name", "")[:64])
            if done in DONE else "")
    if request.query.get("done") == "pretags":
        said = notice(request, "tags.pretags_done").format(
            stored=request.query.get("stored", "0")[:8],
            applied=request.query.get("applied", "0")[:8])
    elif request.query.get("done") == "pretags_same":
        said = notice(request, "tags.pretags_same")
    pretags = services_of(request).pretags
    return render(request, "tags.html", who=who, active="tags",
                  groups=await _library(request).groups(who.tenant.id), notice=said,
                  pretags=await pretags.summary(who.tenant.id))


def _order(raw: Any) -> int | None:
    text = str(raw or "").strip()
    if not text:
        return None
    if not text.isdigit() or len(text) > 10:
        raise ValidationFailed(f"order: {text[:16]!r} is not a whole number",
                               code="tag_order_bad")
    return int(text)


@page
async def create(request: web.Request, who: auth.Access) -> web.StreamResponse:
    """新增标签: one name a line, into the chosen group or a new group."""
    data = await request.post()
    names = [n for n in str(data.get("names", ""))[:4000].splitlines() if n.strip()][:100]
    group_id = str(data.get("group_id", ""))[:64]
    made = await _library(request).create(
        who.tenant.id, [NewTag(n) for n in names] or [NewTag("")], group_id=group_id,
        group_name="" if group_id else str(data.get("group_name", ""))[:64])
    raise _done(who, "added", "、".join(t["name"] for t in made["tags"]))


@page
async def edit(request: web.Request, who: auth.Access) -> web.StreamResponse:
    data = await request.post()
    name = str(data.get("name", ""))[:64]
    edited = await _library(request).edit(
        who.tenant.id, request.match_info["tag_id"][:64], name=name if name.strip() else None,
        order=_order(data.get("order")))
    raise _done(who, "edited", edited["name"])


def _confirmed(request: web.Request, data: Any) -> None:
    if data.get("confirm") != "yes":
        raise ValidationFailed(notice(request, "tags.confirm_needed"))


@page
async def delete(request: web.Request, who: auth.Access) -> web.StreamResponse:
    data = await request.post()
    _confirmed(request, data)
    gone = await _library(request).delete(who.tenant.id, request.match_info["tag_id"][:64])
    raise _done(who, "deleted", gone["name"])


@page
async def delete_group(request: web.Request, who: auth.Access) -> web.StreamResponse:
    data = await request.post()
    _confirmed(request, data)
    gone = await _library(request).delete_group(who.tenant.id,
                                                request.match_info["group_id"][:64])
    raise _done(who, "group_deleted", gone["name"])


@page
async def upload_pretags(request: web.Request, who: auth.Access) -> web.StreamResponse:
    """预打标签: a CSV of `unionid,tag|tag` lines; a bad line refuses the file (its number)."""
    data = await request.post()
    upload = data.get("csv")
    raw = (upload.file.read(UPLOAD_BYTES + 1) if isinstance(upload, web.FileField)
           else b"")
    if len(raw) > UPLOAD_BYTES:
        raise ValidationFailed("file too large", code="pretags_too_large")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailed("not UTF-8", code="pretags_not_utf8") from None
    services = services_of(request)
    done = await services.pretags.submit(who.tenant.id, read_csv(text))
    if nothing_new(done):  # the same file again: said on the page, not in 操作日志
        nothing_done(request)
        raise web.HTTPSeeOther(f"/console/{who.tenant.id}/tags?done=pretags_same#notice")
    query = urlencode({"done": "pretags", "stored": done["stored"], "applied": done["applied"]})
    raise web.HTTPSeeOther(f"/console/{who.tenant.id}/tags?{query}#notice")


def routes(base: str) -> list[web.RouteDef]:
    return [
        web.get(f"{base}/tags", tags),
        web.post(f"{base}/tags", create),
        web.post(f"{base}/pretags", body_limit(FORM_BYTES, upload_pretags)),
        web.post(f"{base}/tags/{{tag_id}}", edit),
        web.post(f"{base}/tags/{{tag_id}}/delete", delete),
        web.post(f"{base}/tag-groups/{{group_id}}/delete", delete_group),
    ]
