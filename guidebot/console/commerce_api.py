"""Commerce HTTP: the signed orders webhook, the visit beacon, links, orders and commissions."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from guidebot.commerce import periods, signature, statements
from guidebot.commerce.ledger import PeriodSettled
from guidebot.commerce.links import LinkRequest
from guidebot.commerce.schema import PaidOrder, SchemaError, parse
from guidebot.commerce.service import CommerceService
from guidebot.console.api import SERVICES
from guidebot.errors import NotFound, ValidationFailed
from guidebot.services import Services

log = logging.getLogger(__name__)

MAX_ORDER_BODY = 1024 * 1024  # one order event is a few KB; 1 MiB is generous
CHUNK = 64 * 1024


def _services(request: web.Request) -> Services:
    return request.app[SERVICES]


def _commerce(request: web.Request) -> CommerceService:
    return _services(request).commerce


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


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
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _error(400, "body must be JSON", field="(body)", reason="not valid JSON")
    except SchemaError as exc:
        return _error(400, str(exc), field=exc.field, reason=exc.reason)
    commerce = services.commerce
    if isinstance(event, PaidOrder):
        outcome = await commerce.orders.paid(tenant, event)
    else:
        outcome = await commerce.orders.refunded(tenant, event)
    for domain_event in outcome.events:
        await services.publish(domain_event)
    return web.json_response(outcome.body, status=202 if outcome.status == "held" else 200)


async def get_visit(request: web.Request) -> web.Response:
    try:
        tenant = await _commerce(request).links.visit(
            request.match_info["token"], request.query, _commerce(request).clock())
    except ValidationFailed as exc:
        return _error(400, str(exc))
    if tenant is None:
        return _error(404, "unknown token")
    return web.Response(status=204)


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except json.JSONDecodeError:
        raise ValidationFailed("body must be JSON") from None
    if not isinstance(data, dict):
        raise ValidationFailed("body must be a JSON object")
    return data


def _str(data: dict[str, Any], key: str, required: bool = False) -> str:
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise ValidationFailed(f"{key}: required string")
        return ""
    if not isinstance(value, str) or len(value) > 128:
        raise ValidationFailed(f"{key}: must be a string of at most 128 characters")
    return value


async def post_link(request: web.Request) -> web.Response:
    commerce = _commerce(request)
    data = await _json(request)
    req = LinkRequest(guide=_str(data, "guide", True), sku=_str(data, "sku"),
                      page=_str(data, "page"), campaign=_str(data, "campaign"),
                      customer=_str(data, "customer") or None, title=_str(data, "title"),
                      pic_media_id=_str(data, "pic_media_id"))
    link = await commerce.links.create(commerce.tenant(request.match_info["tenant"]), req)
    return web.json_response(link, status=201)


async def get_order(request: web.Request) -> web.Response:
    commerce = _commerce(request)
    body = await statements.order_view(commerce.db, commerce.tenant(request.match_info["tenant"]),
                                       request.match_info["order_no"])
    return web.json_response(body)


def _period(request: web.Request) -> str:
    period = request.query.get("period", "")
    periods.parse(period)
    return period


async def get_statements(request: web.Request) -> web.Response:
    commerce = _commerce(request)
    tenant = commerce.tenant(request.match_info["tenant"])
    body = await statements.statement(commerce.db, tenant, _period(request))
    if request.query.get("format") == "csv":
        return web.Response(text=statements.to_csv(body), content_type="text/csv")
    return web.json_response(body)


async def post_settle(request: web.Request) -> web.Response:
    commerce = _commerce(request)
    operator = request.query.get("operator", "") or "admin-api"
    body = await commerce.ledger.settle(commerce.tenant(request.match_info["tenant"]),
                                        _period(request), operator)
    return web.json_response(body)


async def post_adjustment(request: web.Request) -> web.Response:
    commerce = _commerce(request)
    data = await _json(request)
    amount = data.get("amount_fen")
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise ValidationFailed("amount_fen: must be an integer")
    body = await commerce.ledger.adjust(
        commerce.tenant(request.match_info["tenant"]), guide=_str(data, "guide", True),
        amount_fen=amount, reason=_str(data, "reason", True),
        operator=_str(data, "operator", True), key=_str(data, "key"))
    return web.json_response(body, status=201)


async def get_store_report(request: web.Request) -> web.Response:
    commerce = _commerce(request)
    tenant = commerce.tenant(request.match_info["tenant"])
    return web.json_response(await statements.store_report(commerce.db, tenant,
                                                            _period(request)))


async def get_value(request: web.Request) -> web.Response:
    commerce = _commerce(request)
    tenant = commerce.tenant(request.match_info["tenant"])
    return web.json_response(await commerce.value_report(tenant, _period(request)))


async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except PeriodSettled as exc:
        return _error(409, str(exc))
    except ValidationFailed as exc:
        return _error(400, str(exc))
    except NotFound as exc:
        return _error(404, str(exc))


def _guarded(handler: Any) -> Any:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        return await _errors(request, handler)

    return wrapped


def routes() -> list[web.RouteDef]:
    api = "/api/v1/{tenant}"
    return [
        web.post("/orders/{tenant}", post_order),
        web.get("/t/{token}", get_visit),
        web.post(f"{api}/links", _guarded(post_link)),
        web.get(f"{api}/orders/{{order_no}}", _guarded(get_order)),
        web.get(f"{api}/commissions/statements", _guarded(get_statements)),
        web.post(f"{api}/commissions/settle", _guarded(post_settle)),
        web.post(f"{api}/commissions/adjustments", _guarded(post_adjustment)),
        web.get(f"{api}/commissions/stores", _guarded(get_store_report)),
        web.get(f"{api}/commerce/value", _guarded(get_value)),
    ]


def install(app: web.Application) -> None:
    """Add the routes and version each tenant's commission rules at start."""
    app.add_routes(routes())

    async def record_rules(app: web.Application) -> None:
        await app[SERVICES].commerce.record_rules()

    app.on_startup.append(record_rules)
