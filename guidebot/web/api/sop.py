"""Admin JSON API for SOPs: list, preview, enroll; and the guide tasks they created."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from guidebot.content.reload import problems_json
from guidebot.errors import NotFound, ValidationFailed
from guidebot.services import Services
from guidebot.sop import views
from guidebot.web.keys import SERVICES


def _services(request: web.Request) -> Services:
    return request.app[SERVICES]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def list_sops(request: web.Request) -> web.Response:
    services, tenant = _services(request), request.match_info["tenant"]
    currents = await services.sop.ready(tenant)
    body = await views.sops_view(services.db, services.settings.tenant(tenant), currents)
    # An edit of content_library that failed validation (the library in force stays).
    body["library_errors"] = problems_json(services.library)
    return web.json_response(body)


async def preview(request: web.Request) -> web.Response:
    services, tenant_id = _services(request), request.match_info["tenant"]
    tenant = services.settings.tenant(tenant_id)
    sop_id = request.match_info["sop_id"]
    try:
        added_at = views.parse_added_at(request.query.get("added_at"), tenant)
        currents = await services.sop.ready(tenant_id)
        return web.json_response(views.preview_view(currents.get(sop_id), sop_id, tenant,
                                                    added_at))
    except ValidationFailed as exc:
        return _error(400, str(exc))
    except NotFound as exc:
        return _error(404, str(exc))


async def tasks(request: web.Request) -> web.Response:
    services, tenant = _services(request), request.match_info["tenant"]
    return web.json_response(await views.tasks_view(
        services.db, services.settings.tenant(tenant), request.query.get("guide") or None,
        request.query.get("status") or None))


async def enroll(request: web.Request) -> web.Response:
    services, tenant = _services(request), request.match_info["tenant"]
    try:
        data = await request.json()
    except json.JSONDecodeError:
        return _error(400, "body must be JSON")
    if not isinstance(data, dict):
        return _error(400, "body must be a JSON object")
    if "audience" in data:
        return await _enroll_audience(services, tenant, request.match_info["sop_id"], data)
    fields: dict[str, Any] = {k: data.get(k) for k in ("external_userid", "guide")}
    for key, value in fields.items():
        if not isinstance(value, str) or not value:
            return _error(400, f"{key}: required string")
    sop_id = request.match_info["sop_id"]
    await services.sop.ready(tenant)
    try:
        enrollment_id, created = await services.sop.engine.manual(
            tenant, sop_id, fields["external_userid"], fields["guide"])
    except NotFound as exc:
        return _error(404, str(exc))
    except ValidationFailed as exc:
        return _error(400, str(exc))
    return web.json_response({"enrollment_id": enrollment_id, "sop": sop_id,
                              "created": created}, status=201 if created else 200)


async def _enroll_audience(services: Services, tenant: str, sop_id: str,
                           data: dict[str, Any]) -> web.Response:
    """`{"audience": {tags_any?, tags_all?, tags_none?, stores?, guides?}}`: every active
    relation it admits ({} = all of them)."""
    if set(data) != {"audience"}:
        return _error(400, "audience: give it alone, not with external_userid or guide")
    try:
        audience = views.parse_audience(data["audience"])
        await services.sop.ready(tenant)
        enrolled = await services.sop.engine.enroll_audience(tenant, sop_id, audience)
    except NotFound as exc:
        return _error(404, str(exc))
    except ValidationFailed as exc:
        return _error(400, str(exc))
    return web.json_response({"sop": sop_id, "enrolled": enrolled,
                              "audience": {k: list(v) for k, v in audience.__dict__.items()}})


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/v1/{tenant}/sops", list_sops),
        web.get("/api/v1/{tenant}/sops/{sop_id}/preview", preview),
        web.post("/api/v1/{tenant}/sops/{sop_id}/enroll", enroll),
        web.get("/api/v1/{tenant}/tasks", tasks),
    ]
