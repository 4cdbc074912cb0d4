"""操作日志's one place of recording: every state-changing request (POST, PUT, PATCH, DELETE)
to a tenant's admin API (/api/v1/{tenant}/…) or console (/console/{tenant}/…) that succeeded
(status < 400) is one entry — who (the session's actor, or "admin token" for the bearer), the
route's method and path template, its path ids and the status. The body is never read here.

Reads are not recorded, but for those that hand out customers' personal data (查阅复制, and
the console CSVs CSV_EXPORTS in pages/console.py marks personal): their views call
`record_access` themselves.

Console forms answer with a redirect raised as an exception (303): that counts as success too.
A refusal answers 4xx (console forms too: the `page` wrapper words ValidationFailed as 400 and
StateConflict as 409), so it is not recorded. What answers < 400 and still changes nothing is
not recorded either:
- the write methods that only read (NOT_WRITES, one list, each with why);
- a write that turned out to do nothing: an idempotent replay answered with the stored result
  (or a key that fired a drop before), a batch every item of which was refused, a 停止群发 with
  nothing left to stop, a 预打标签 import with nothing new; its view calls `nothing_done`.
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
NOTHING_DONE = web.RequestKey("audit_trail.nothing_done", bool)

# Routes with a write method that change nothing HQ did: never recorded. Each with its reason;
# tests/scenario/test_audit_nothing_done.py checks every write route is either recorded or here.
NOT_WRITES: dict[str, str] = {
    "POST /console/{tenant}/channels/quota":
        "读取额度: reads WeCom's 获客助手 quota now; only the last reading is kept",
}


def nothing_done(request: web.Request) -> None:
    """This write changed nothing (an idempotent replay, a batch whose every item was
    refused, a stop with nothing left to stop, an import with nothing new): its answer (< 400)
    is not recorded."""
    request[NOTHING_DONE] = True


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


def audited(method: str, template: str) -> bool:
    """Whether a successful `method` on the route `template` is recorded (unless its view
    says nothing was done)."""
    return (method in WRITES and template.startswith(AUDITED)
            and f"{method} {template}" not in NOT_WRITES)


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
    template = _template(request)
    if template is None or not audited(request.method, template):
        return await handler(request)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 and not request.get(NOTHING_DONE):
            await _record(request, template, exc.status)
        raise
    if response.status < 400 and not request.get(NOTHING_DONE):
        await _record(request, template, response.status)
    return response
