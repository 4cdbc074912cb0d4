"""Admin API routes of the corp tag library (标签管理): list the groups and tags with the
customers carrying each, add tags (to a group or in a new one), rename or reorder a tag, delete
a tag or a whole group. WeCom is asked first; a refusal is 502 and changes nothing."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from aiohttp import web

from guidebot.contacts.tag_library import NewTag, TagLibrary, WeComRefused
from guidebot.web.api import parsing
from guidebot.web.api import tag_shapes as shapes
from guidebot.web.api.parsing import Endpoint, reply
from guidebot.web.keys import SERVICES


def _library(request: web.Request) -> TagLibrary:
    return request.app[SERVICES].tag_library


async def _asked(change: Awaitable[dict[str, Any]], status: int = 200) -> web.Response:
    try:
        return reply(await change, status=status)
    except WeComRefused as exc:
        return parsing.error(502, None, str(exc), errcode=exc.params["errcode"])


async def listed(request: web.Request) -> web.Response:
    return reply({"groups": await _library(request).groups(request.match_info["tenant"])})


async def create(request: web.Request) -> web.Response:
    data = await parsing.body(request, shapes.TagsCreate)
    if bool(data.group_id) == bool(data.group_name):
        raise parsing.FieldError("group_id", "give group_id (an existing group) or "
                                 "group_name (a new group), not both")
    return await _asked(_library(request).create(
        request.match_info["tenant"], [NewTag(t.name, t.order) for t in data.tags],
        group_id=data.group_id or "", group_name=data.group_name or "",
        group_order=data.order), status=201)


async def edit(request: web.Request) -> web.Response:
    tag_id = parsing.path(request, shapes.TagPath).tag_id
    data = await parsing.body(request, shapes.LibraryTagEdit)
    return await _asked(_library(request).edit(request.match_info["tenant"], tag_id,
                                               name=data.name, order=data.order))


async def delete(request: web.Request) -> web.Response:
    tag_id = parsing.path(request, shapes.TagPath).tag_id
    return await _asked(_library(request).delete(request.match_info["tenant"], tag_id))


async def delete_group(request: web.Request) -> web.Response:
    group_id = parsing.path(request, shapes.GroupPath).group_id
    return await _asked(_library(request).delete_group(request.match_info["tenant"], group_id))


REFUSED = {502: "WeCom refused (`errcode` given; 301002: the tag or group was not created by "
                "this app); nothing was changed"}
API = "/api/v1/{tenant}"
ENDPOINTS = [
    Endpoint("GET", f"{API}/tags", listed,
             "标签管理: the corp tag library's groups and tags (WeCom's order, larger first), "
             "each tag with how many customers carry it in the local mirror",
             shapes.TagLibrary),
    Endpoint("POST", f"{API}/tags", create,
             "Add tags to an existing group (`group_id`) or in a new group (`group_name`) "
             "through add_corp_tag, then mirror them; a name that is empty, longer than 30 "
             "characters or already in the group is a 400 naming it (`tags.0.name`)",
             shapes.LibraryGroup, body=shapes.TagsCreate, status=201,
             errors={404: "no such group (`group_id`)", **REFUSED}),
    Endpoint("PATCH", f"{API}/tags/{{tag_id}}", edit,
             "Rename and/or reorder a tag (edit_corp_tag), then mirror it; a tag declared in "
             "content_library/tags.toml is refused (400)", shapes.EditedTag,
             body=shapes.LibraryTagEdit, params=shapes.TagPath, errors=REFUSED),
    Endpoint("DELETE", f"{API}/tags/{{tag_id}}", delete,
             "Delete a tag (del_corp_tag): WeCom takes it off every customer, and so does the "
             "mirror; a tag declared in tags.toml is refused (400)", shapes.TagDeleted,
             params=shapes.TagPath, errors=REFUSED),
    Endpoint("DELETE", f"{API}/tag-groups/{{group_id}}", delete_group,
             "Delete a tag group and all its tags (del_corp_tag); a group holding tags declared "
             "in tags.toml is refused (400)", shapes.TagDeleted, params=shapes.GroupPath,
             errors=REFUSED),
]


def routes() -> list[web.RouteDef]:
    return [e.route() for e in ENDPOINTS]
