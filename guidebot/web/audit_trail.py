"""操作日志's one place of recording: every state-changing request (POST, PUT, PATCH, DELETE)
to a tenant's admin API (/api/v1/{tenant}/…) or console (/console/{tenant}/…) that succeeded
(status < 400) is one entry — who (the session's actor, or "admin token" for the bearer), the
route's method and path template, its path ids and the status. The body is never read here.

Reads are not recorded, but for the one that hands out a customer's personal data (查阅复制):
its view calls `record_access` itself.

Console forms answer with a redirect raised as an exception (303): that counts as success too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from guidebot.web.keys import SERVICES
from guidebot.web.pages import console_auth

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
AUDITED = ("/api/v1/{tenant}/", "/console/{tenant}/")
RECORDED_IDS = web.RequestKey("audit_trail.ids", dict)  # a handler's replacement for its path ids


def record_ids_as(request: web.Request, ids: dict[str, str]) -> None:
    """Record these ids instead of the path's: 删除客户个人信息 logs the tombstone, never the
    erased customer's external_userid."""
    request[RECORDED_IDS] = ids


async def record_access(request: web.Request) -> None:
    """Record a read that hands out personal data (查阅复制's export): reads are not recorded
    by the middleware, this one must be traceable."""
    template = _template(request)
    if template is not None:
        await _record(request, template, 200)


def _template(request: web.Request) -> str | None:
    resource = request.match_info.route.resource
    template = resource.canonical if resource is not None else ""
    return template if template.startswith(AUDITED) else None


async def _record(request: web.Request, template: str, status: int) -> None:
    services = request.app[SERVICES]
    tenant = services.settings.tenants.get(request.match_info.get("tenant", ""))
    if tenant is None:
        return
    params = request.get(RECORDED_IDS) or {
        k: v for k, v in request.match_info.items() if k != "tenant"}
    await services.audit.record(tenant.id, console_auth.actor_of(request, tenant),
                                f"{request.method} {template}", params, status)


@web.middleware
async def audit_trail(request: web.Request, handler: Handler) -> Any:
    template = _template(request) if request.method in WRITES else None
    if template is None:
        return await handler(request)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            await _record(request, template, exc.status)
        raise
    if response.status < 400:
        await _record(request, template, response.status)
    return response
