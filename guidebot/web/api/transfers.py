"""Admin JSON API routes for customer transfers (在职继承 / 离职继承): start one, list them,
one with its customers, and the resigned guides' customers WeCom has not reassigned."""

from __future__ import annotations

from aiohttp import web

from guidebot import idempotency
from guidebot.errors import WeComError
from guidebot.services import Services
from guidebot.web.api import parsing
from guidebot.web.api import transfer_shapes as shapes
from guidebot.web.api.parsing import Endpoint, reply
from guidebot.web.audit_trail import nothing_done
from guidebot.web.keys import SERVICES


def _services(request: web.Request) -> Services:
    return request.app[SERVICES]


def _tenant(request: web.Request) -> str:
    return request.match_info["tenant"]


async def create(request: web.Request) -> web.Response:
    data = await parsing.body(request, shapes.TransferCreate)
    services, tenant = _services(request), _tenant(request)
    replayed = await idempotency.stored(services.db, tenant, "transfers", data.key, data)
    if replayed is not None:  # the stored answer: nothing done now
        nothing_done(request)
        return reply(replayed)
    try:
        batch_id = await services.transfers.start(
            tenant, kind=data.kind, handover=data.handover, takeover=data.takeover,
            customers=data.external_userids, message=data.message)
    except WeComError as exc:  # reading the unassigned list for a resigned guide
        return parsing.error(502, None, f"WeCom refused: errcode {exc.errcode}; "
                             "nothing was stored")
    result = await services.transfers.view(tenant, batch_id)
    await idempotency.remember(services.db, tenant, "transfers", data.key, data, result)
    return reply(result, status=201)


async def get_one(request: web.Request) -> web.Response:
    batch_id = parsing.path(request, shapes.TransferPath).batch_id
    services = _services(request)
    return reply(await services.transfers.view(_tenant(request), batch_id))


async def list_all(request: web.Request) -> web.Response:
    q = parsing.query(request, shapes.TransfersQuery)
    return reply(await _services(request).transfers.list_view(
        _tenant(request), limit=q.limit, before=q.before))


async def unassigned(request: web.Request) -> web.Response:
    services = _services(request)
    try:
        found = await services.transfers.unassigned(_tenant(request))
    except WeComError as exc:
        return parsing.error(502, None, f"WeCom refused get_unassigned_list: "
                             f"errcode {exc.errcode}")
    return reply({"guides": [{"handover": u.handover, "customers": len(u.customers),
                              "external_userids": list(u.customers),
                              "dimission_at": u.dimission_at.isoformat()
                              if u.dimission_at else None} for u in found]})


API = "/api/v1/{tenant}"
ENDPOINTS = [
    Endpoint("POST", f"{API}/transfers", create,
             "Transfer customers from one guide to another (在职继承 `on_job`, or 离职继承 "
             "`resigned` for a guide who left): all the handover guide's customers, or those "
             "listed; WeCom is asked at once, 100 customers a call, and completes each "
             "transfer by itself after 24 hours (optional idempotency `key`)",
             shapes.Transfer, body=shapes.TransferCreate, status=201,
             errors={400: "the guides or customers do not fit (`reason` says which); nothing "
                          "was stored",
                     409: "the key was used with another body (`stored` holds the result)",
                     502: "WeCom refused to list a resigned guide's customers; nothing was "
                          "stored"}),
    Endpoint("GET", f"{API}/transfers", list_all,
             "Transfers, newest first, with their customers per state (follow `next` as "
             "`before`)", shapes.Transfers, query=shapes.TransfersQuery),
    Endpoint("GET", f"{API}/transfers/unassigned", unassigned,
             "Resigned guides' customers WeCom has not reassigned (get_unassigned_list)",
             shapes.UnassignedList,
             errors={502: "WeCom refused get_unassigned_list"}),
    Endpoint("GET", f"{API}/transfers/{{batch_id}}", get_one,
             "A transfer with each customer's state (queued, waiting, done, refused, limit, "
             "failed with WeCom's errcode, none)", shapes.Transfer, params=shapes.TransferPath,
             errors={404: "no such transfer in this tenant"}),
]


def routes() -> list[web.RouteDef]:
    return [e.route() for e in ENDPOINTS]
