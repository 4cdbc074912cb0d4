"""Admin JSON API routes for customer groups (客户群): the groups with joins and leaves in a
range, one group with its members, and a sync from WeCom now."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from guidebot.contacts.group_handover import all_refused
from guidebot.errors import WeComError
from guidebot.services import Services
from guidebot.stats.overview import parse_range
from guidebot.web.api import group_shapes as shapes
from guidebot.web.api import parsing
from guidebot.web.api.parsing import Endpoint, reply
from guidebot.web.audit_trail import nothing_done
from guidebot.web.keys import SERVICES


def _services(request: web.Request) -> Services:
    return request.app[SERVICES]


async def list_groups(request: web.Request) -> web.Response:
    q = parsing.query(request, shapes.GroupsQuery)
    services = _services(request)
    tenant = services.settings.tenant(request.match_info["tenant"])
    day_from, day_to = parse_range(q.from_ or None, q.to or None,
                                   datetime.now(tenant.tz).date())
    return reply(await services.groups.list_view(tenant, day_from=day_from, day_to=day_to,
                                                 owner=q.owner, dismissed=q.dismissed))


async def get_group(request: web.Request) -> web.Response:
    chat_id = parsing.path(request, shapes.GroupPath).chat_id
    return reply(await _services(request).groups.detail_view(request.match_info["tenant"],
                                                             chat_id))


async def sync(request: web.Request) -> web.Response:
    try:
        result = await _services(request).groups.sync(request.match_info["tenant"])
    except WeComError as exc:
        return parsing.error(502, None, f"WeCom refused: errcode {exc.errcode}")
    return reply({"groups": result.groups, "dismissed": result.dismissed})


async def transfer(request: web.Request) -> web.Response:
    data = await parsing.body(request, shapes.GroupTransfer)
    result = await _services(request).group_handover.hand_over(
        request.match_info["tenant"], chat_ids=data.chat_ids, new_owner=data.new_owner,
        resigned=data.kind == "resigned")
    if all_refused(result):  # answered as ever (200, each errcode), not in 操作日志
        nothing_done(request)
    return reply(result)


API = "/api/v1/{tenant}"
ENDPOINTS = [
    Endpoint("GET", f"{API}/groups", list_groups,
             "Customer groups (客户群), most customers first, with the customers who joined "
             "and left on the range's days (`from`/`to`, the tenant's days; default the last "
             "30), and totals", shapes.Groups, query=shapes.GroupsQuery,
             errors={400: "a bad range or filter"}),
    Endpoint("GET", f"{API}/groups/{{chat_id}}", get_group,
             "A group with everyone who has been in it (customers and members), when they "
             "joined and left", shapes.GroupDetail, params=shapes.GroupPath,
             errors={404: "no such group in this tenant"}),
    Endpoint("POST", f"{API}/groups/transfer", transfer,
             "Hand groups to a new owner (`resigned`: the owner left, groupchat/transfer; "
             "`on_job`: groupchat/onjob_transfer), 100 a call; answers the groups handed "
             "over and those WeCom refused with its errcode (90500 the owner has not left, "
             "90502 the owner has left, 90504 the same owner, 90507/90508 already inheriting "
             "or inherited, …)", shapes.GroupTransferResult, body=shapes.GroupTransfer,
             errors={400: "a new owner who is not an active guide, or unknown groups; "
                          "nothing asked"}),
    Endpoint("POST", f"{API}/groups/sync", sync,
             "Read every group from WeCom now (groupchat/list, groupchat/get); a group WeCom "
             "no longer lists is recorded as dismissed", shapes.GroupSync,
             errors={502: "WeCom refused"}),
]


def routes() -> list[web.RouteDef]:
    return [e.route() for e in ENDPOINTS]
