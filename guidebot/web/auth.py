"""Bearer auth for /api/v1/{tenant}/…: each tenant's own admin token, constant-time compared;
wrong tokens counted per client address with failed sign-ins (web/signin_throttle.py)."""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from guidebot.settings import Settings
from guidebot.web.signin_throttle import Held, throttle_of

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, field: str, reason: str, **extra: Any) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="guidebot"'} if status == 401 else None
    return web.json_response({"error": f"{field}: {reason}", "field": field, "reason": reason,
                              **extra}, status=status, headers=headers,
                             dumps=lambda v: json.dumps(v, ensure_ascii=False))


def bearer_is(request: web.Request, token: str) -> bool:
    """Whether the request carries `Authorization: Bearer <token>` (constant-time compared)."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return (scheme.lower() == "bearer" and bool(given)
            and hmac.compare_digest(given.encode(), token.encode()))


def _throttled(held: Held) -> web.Response:
    response = _error(429, "Authorization", "too many wrong tokens from this address: try "
                      f"again in {held.minutes} min", code="auth.throttled")
    response.headers["Retry-After"] = str(held.retry_after)
    return response


def admin_auth(settings: Settings) -> Any:
    """The middleware (typed Any: aiohttp's Middleware protocol does not accept closures)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        tenant_id = request.match_info.get("tenant")
        if not request.path.startswith("/api/v1/") or tenant_id is None:
            return await handler(request)
        tenant = settings.tenants.get(tenant_id)
        if tenant is None:
            return _error(404, "tenant", f"unknown tenant {tenant_id!r}")
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return _error(401, "Authorization", "missing bearer token")
        verdict = throttle_of(request).bearer(
            request, tenant.id,
            lambda: hmac.compare_digest(token.encode(), tenant.admin_token.encode()))
        if isinstance(verdict, Held):
            return _throttled(verdict)
        if not verdict:
            return _error(403, "Authorization", "token not valid for this tenant")
        return await handler(request)

    return middleware
