"""Bearer auth for /api/v1/{tenant}/…: each tenant's own admin token, constant-time compared."""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from guidebot.settings import Settings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, field: str, reason: str) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="guidebot"'} if status == 401 else None
    return web.json_response({"error": f"{field}: {reason}", "field": field, "reason": reason},
                             status=status, headers=headers,
                             dumps=lambda v: json.dumps(v, ensure_ascii=False))


def bearer_is(request: web.Request, token: str) -> bool:
    """Whether the request carries `Authorization: Bearer <token>` (constant-time compared)."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return (scheme.lower() == "bearer" and bool(given)
            and hmac.compare_digest(given.encode(), token.encode()))


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
        if not hmac.compare_digest(token.encode(), tenant.admin_token.encode()):
            return _error(403, "Authorization", "token not valid for this tenant")
        return await handler(request)

    return middleware
