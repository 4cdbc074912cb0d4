"""Admin JSON API routes for 群活码 (group join codes): list with the joins of a range, make
one for 1–5 live groups, change its groups, delete it (guidebot/contacts/group_codes.py)."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from guidebot.contacts.group_codes import Edit, GroupCodeService, Settings, tuple_or_none
from guidebot.errors import WeComError
from guidebot.stats.overview import parse_range
from guidebot.web.api import group_code_shapes as shapes
from guidebot.web.api import parsing
from guidebot.web.api.parsing import Endpoint, reply
from guidebot.web.keys import SERVICES


def _codes(request: web.Request) -> GroupCodeService:
    return request.app[SERVICES].group_codes


def _refused(exc: WeComError, what: str) -> web.Response:
    return parsing.error(502, None, f"WeCom refused: errcode {exc.errcode}; {what}")


async def list_codes(request: web.Request) -> web.Response:
    q = parsing.query(request, shapes.GroupCodesQuery)
    tenant = request.app[SERVICES].settings.tenant(request.match_info["tenant"])
    day_from, day_to = parse_range(q.from_ or None, q.to or None,
                                   datetime.now(tenant.tz).date())
    return reply(await _codes(request).list_view(tenant, day_from=day_from, day_to=day_to))


async def create_code(request: web.Request) -> web.Response:
    data = await parsing.body(request, shapes.GroupCodeCreate)
    tenant, codes = request.match_info["tenant"], _codes(request)
    try:
        code = await codes.create(tenant, Settings(
            chat_ids=tuple(data.chat_ids), campaign=data.campaign, store=data.store or None,
            auto_create_room=data.auto_create_room, room_base_name=data.room_base_name,
            room_base_id=data.room_base_id))
    except WeComError as exc:
        return _refused(exc, "nothing was stored")
    return reply(await codes.view(tenant, code), status=201)


async def get_code(request: web.Request) -> web.Response:
    code_id = parsing.path(request, shapes.GroupCodePath).code_id
    tenant, codes = request.match_info["tenant"], _codes(request)
    return reply(await codes.view(tenant, await codes.get(tenant, code_id)))


async def edit_code(request: web.Request) -> web.Response:
    code_id = parsing.path(request, shapes.GroupCodePath).code_id
    data = await parsing.body(request, shapes.GroupCodeEdit)
    tenant, codes = request.match_info["tenant"], _codes(request)
    try:
        code = await codes.edit(tenant, code_id, Edit(
            chat_ids=tuple_or_none(data.chat_ids), campaign=data.campaign, store=data.store,
            auto_create_room=data.auto_create_room, room_base_name=data.room_base_name,
            room_base_id=data.room_base_id))
    except WeComError as exc:
        return _refused(exc, "nothing was changed")
    return reply(await codes.view(tenant, code))


async def delete_code(request: web.Request) -> web.Response:
    code_id = parsing.path(request, shapes.GroupCodePath).code_id
    tenant, codes = request.match_info["tenant"], _codes(request)
    try:
        code = await codes.delete(tenant, code_id)
    except WeComError as exc:
        return _refused(exc, "the code still works")
    return reply(await codes.view(tenant, code))


API = "/api/v1/{tenant}"
_GROUPS_400 = "groups that are not 1–5 live customer groups of the tenant, or a bad field"
ENDPOINTS = [
    Endpoint("GET", f"{API}/group-codes", list_codes,
             "群活码: the tenant's group join codes, newest first (deleted ones too), each "
             "with the customers' joins through it on the range's days (`from`/`to`, the "
             "tenant's days; default the last 30)", shapes.GroupCodes,
             query=shapes.GroupCodesQuery, errors={400: "a bad range"}),
    Endpoint("POST", f"{API}/group-codes", create_code,
             "Make a 群活码 for 1–5 live customer groups (WeCom's groupchat/add_join_way, "
             "assumed API): its QR code brings customers into them, each join counted under "
             "the code", shapes.GroupCode, body=shapes.GroupCodeCreate, status=201,
             errors={400: _GROUPS_400, 502: "WeCom refused; nothing was stored"}),
    Endpoint("GET", f"{API}/group-codes/{{code_id}}", get_code, "One 群活码",
             shapes.GroupCode, params=shapes.GroupCodePath,
             errors={404: "no such code in this tenant"}),
    Endpoint("PATCH", f"{API}/group-codes/{{code_id}}", edit_code,
             "Change a 群活码's groups, campaign, store or auto-created rooms (update_join_way, "
             "assumed API); its QR code and state stay", shapes.GroupCode,
             body=shapes.GroupCodeEdit, params=shapes.GroupCodePath,
             errors={400: _GROUPS_400, 404: "no such code (or it was deleted)",
                     502: "WeCom refused; nothing was changed"}),
    Endpoint("DELETE", f"{API}/group-codes/{{code_id}}", delete_code,
             "Delete a 群活码 in WeCom (del_join_way, assumed API); it stays listed with the "
             "joins it brought", shapes.GroupCode, params=shapes.GroupCodePath,
             errors={404: "no such code in this tenant", 502: "WeCom refused; the code "
                     "still works"}),
]


def routes() -> list[web.RouteDef]:
    return [e.route() for e in ENDPOINTS]
