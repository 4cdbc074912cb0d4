"""Admin API routes for drops HQ creates (新建群发): create one (sent now or at a time), list
them with the content library's, cancel one not fired yet."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from guidebot import idempotency
from guidebot.services import Services
from guidebot.sop.tenant_drops import Draft
from guidebot.web.api import drop_shapes as shapes
from guidebot.web.api import parsing
from guidebot.web.api.parsing import Endpoint, reply
from guidebot.web.api.shapes import DropPath
from guidebot.web.audit_trail import nothing_done
from guidebot.web.keys import SERVICES


def _services(request: web.Request) -> Services:
    return request.app[SERVICES]


def draft_of(data: shapes.DropCreate) -> Draft:
    return Draft(title=data.title, channel=data.channel, at=data.at, message=data.message,
                 material=data.material,
                 audience=data.audience.model_dump(exclude={"segment"}),
                 operator=data.operator or "api", segment=data.audience.segment)


async def create(request: web.Request) -> web.Response:
    services, tenant = _services(request), request.match_info["tenant"]
    data = await parsing.body(request, shapes.DropCreate)
    replayed = await idempotency.stored(services.db, tenant, "drops", data.key, data)
    if replayed is not None:  # the stored answer: nothing done now
        nothing_done(request)
        return reply(replayed)
    created = await services.sop.create_drop(tenant, draft_of(data))
    result: dict[str, Any] = {"drop": created.drop, "firing": created.firing,
                              "tasks": created.tasks}
    body = shapes.DropCreated.model_validate(result).model_dump(mode="json")
    await idempotency.remember(services.db, tenant, "drops", data.key, data, body)
    return reply(body, status=201)


async def listed(request: web.Request) -> web.Response:
    services, tenant = _services(request), request.match_info["tenant"]
    body = {"drops": await services.sop.drops_listed(tenant)}
    return reply(shapes.DropList.model_validate(body).model_dump(mode="json"))


async def cancel(request: web.Request) -> web.Response:
    services, tenant = _services(request), request.match_info["tenant"]
    drop_id = parsing.path(request, DropPath).drop_id
    cancelled = await services.sop.cancel_drop(tenant, drop_id)
    return reply(shapes.TenantDrop.model_validate(cancelled).model_dump(mode="json"))


API = "/api/v1/{tenant}"
ENDPOINTS = [
    Endpoint("POST", f"{API}/drops", create,
             "Create a one-off 群发 (新建群发) checked by a drop file's rules: at \"now\" it is "
             "sent at once (201 with its firing and tasks queued), else the scheduled run "
             "fires it at its time; a refusal names the field; a key makes it once",
             shapes.DropCreated, body=shapes.DropCreate, status=201),
    Endpoint("GET", f"{API}/drops", listed,
             "The content library's drops and the tenant's own, each with its source and state",
             shapes.DropList),
    Endpoint("POST", f"{API}/drops/{{drop_id}}/cancel", cancel,
             "Cancel a drop created here that has not fired (it never fires); one that fired is "
             "refused (停止群发 stops its tasks)", shapes.TenantDrop, params=DropPath,
             errors={409: "drop_id: a firing claimed the drop (it fired; the scheduled run "
                          "and a cancel never both happen)"}),
]


def routes() -> list[web.RouteDef]:
    return [e.route() for e in ENDPOINTS]
