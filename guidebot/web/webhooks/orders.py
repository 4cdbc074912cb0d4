"""Public commerce webhooks: the store backend's signed order events and the visit beacon."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from guidebot.commerce import signature
from guidebot.commerce.schema import SchemaError, parse
from guidebot.commerce.service import CommerceService
from guidebot.errors import ValidationFailed
from guidebot.services import Services
from guidebot.web.keys import SERVICES
from guidebot.web.visit_limit import VISITS

log = logging.getLogger(__name__)


def _services(request: web.Request) -> Services:
    return request.app[SERVICES]


def _commerce(request: web.Request) -> CommerceService:
    return _services(request).commerce


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


MAX_ORDER_BODY = 1024 * 1024  # one order event is a few KB; 1 MiB is generous
CHUNK = 64 * 1024


async def _bounded_body(request: web.Request) -> bytes | None:
    """The raw body, or None once it exceeds MAX_ORDER_BODY (never buffered beyond that)."""
    if request.content_length is not None and request.content_length > MAX_ORDER_BODY:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_ORDER_BODY:
            return None
        chunks.append(chunk)


async def post_order(request: web.Request) -> web.Response:
    services = _services(request)
    tenant = services.settings.tenants.get(request.match_info["tenant"])
    if tenant is None:
        return _error(404, "unknown tenant")
    body = await _bounded_body(request)
    if body is None:
        log.warning("order event too large tenant=%s", tenant.id)
        return web.json_response({"error": f"body larger than {MAX_ORDER_BODY} bytes"},
                                 status=413, headers={"Connection": "close"})
    if not signature.verify(tenant.order_secret, body, request.headers.get(signature.HEADER)):
        log.warning("order event with a missing or invalid signature tenant=%s", tenant.id)
        return _error(401, "missing or invalid X-Guidebot-Signature")
    try:
        event = parse(json.loads(body))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        return _error(400, "body must be JSON", field="(body)", reason="not valid JSON")
    except SchemaError as exc:
        return _error(400, str(exc), field=exc.field, reason=exc.reason)
    services.stats.arrivals.note()
    answer = await services.commerce.intake.accept(tenant, event)
    return web.json_response(answer.body, status=answer.status)


async def get_visit(request: web.Request) -> web.Response:
    if wait := request.app[VISITS].over(request):
        _services(request).metrics.visits_refused.inc()
        return web.json_response({"error": "too many visits from this address"}, status=429,
                                 headers={"Retry-After": str(wait)})
    try:
        tenant = await _commerce(request).links.visit(
            request.match_info["token"], request.query, _commerce(request).clock())
    except ValidationFailed as exc:
        return _error(400, str(exc))
    if tenant is None:
        return _error(404, "unknown token")
    return web.Response(status=204)


def routes() -> list[web.RouteDef]:
    return [web.post("/orders/{tenant}", post_order), web.get("/t/{token}", get_visit)]
